"""What a ``FlagClient`` tells the service about its own evaluations: usage counts and exposures.

**Usage** (``POST /v1/usage``, api.md "Usage and lifecycle"). The hot path does not build keys or
take locks: each compiled answer (``engine.results.Outcome``) carries a native ``served`` counter
that a local evaluation adds one to (``local.LocalFlags``). Every ``interval`` seconds the
reporter's thread reads the counters of the ruleset serving now, diffs them against what it read
last time and adds the difference to the counts of (flag, variant, reason, hour): the hour is the
one the counters were read in, so an evaluation in the last seconds of an hour may be counted in the
next. An answer that left the ruleset (a new snapshot) is read twice more, then forgotten.

**Exposures** (``POST /v1/exposures``, off by default): one event per user, flag and variant per
``period``, deduplicated here with a bounded LRU of what was sent recently and queued up to a bound
(past it, exposures are dropped and counted).

Both are sent in batches, each with a ``batch_id`` of its own that a retry reuses, so a batch whose
answer was lost is not counted twice. A batch the service cannot take now (network, 401, 429, 5xx)
is kept and retried at the next flush; one it refuses (another 4xx) is dropped and logged. Memory is
bounded: past ``max_pending`` counts or ``queue_size`` exposures, new ones are dropped and counted
(``stats()``). Nothing here raises into the caller. After ``os.fork()`` the child starts over: what
the parent had counted or queued is the parent's to send.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from flagsvc_sdk.engine.compiled import CompiledRuleset
from flagsvc_sdk.engine.results import Outcome

__all__ = ["ExposureQueue", "Reporter", "UsageCounter"]

HOUR: Final = 3600
MAX_COUNTS_PER_BATCH: Final = 10_000
"""The service's cap on ``counts`` per ``POST /v1/usage``."""
MAX_EXPOSURES_PER_BATCH: Final = 1_000
"""The service's cap on ``exposures`` per ``POST /v1/exposures``."""
RETRY_LATER: Final = frozenset({401, 408, 425, 429})
"""Answers after which a batch is kept and sent again (with every 5xx and network error)."""

Post = Callable[[str, dict[str, Any]], int]
"""``post(path, body)``: the status the service answered; raises on a network error."""


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Batch:
    """One request's worth, with the id every attempt to send it carries."""

    path: str
    batch_id: str
    items: list[dict[str, Any]]

    @property
    def body(self) -> dict[str, Any]:
        field = "counts" if self.path == "/v1/usage" else "exposures"
        return {"batch_id": self.batch_id, field: self.items}


Key = tuple[str, "str | None", str, int]  # flag key, variant, reason, hour (epoch seconds)


class UsageCounter:
    """Turns the outcomes' ``served`` counters into counts per (flag, variant, reason, hour).

    Used by the reporter's thread (``harvest`` and ``take_batch``, under its flush lock), except
    ``replaced``, which the client's thread calls when a new snapshot takes over.
    """

    def __init__(self, *, max_pending: int = 50_000) -> None:
        self.max_pending = max_pending
        self._seen: dict[Outcome, int] = {}
        self._retiring: dict[Outcome, int] = {}
        self._counts: dict[Key, int] = {}
        self._unsent: list[Batch] = []
        self._unsent_rows = 0
        self._replaced: list[CompiledRuleset] = []
        self._replaced_lock = threading.Lock()
        self.dropped = 0

    def replaced(self, ruleset: CompiledRuleset) -> None:
        """``ruleset`` stopped serving: what it served since the last harvest is still to count."""
        with self._replaced_lock:
            self._replaced.append(ruleset)

    def baseline(self, ruleset: CompiledRuleset | None) -> None:
        """Forget everything and take the counters as they are now as zero (a forked child: the
        parent reports what was served before the fork)."""
        self._seen = {}
        self._retiring = {}
        self._counts = {}
        self._unsent = []
        self._unsent_rows = 0
        self._replaced = []
        self._replaced_lock = threading.Lock()
        if ruleset is not None:
            for flag in ruleset.flags.values():
                for outcome in flag.outcomes:
                    self._seen[outcome] = outcome.served

    def harvest(self, ruleset: CompiledRuleset | None, now: float) -> None:
        """Add what was served since the last harvest, in the hour of ``now``."""
        hour = int(now // HOUR) * HOUR
        previous, retiring = self._seen, self._retiring
        with self._replaced_lock:
            replaced, self._replaced = self._replaced, []
        for old in replaced:  # rulesets that served between two harvests: counted from zero
            for flag in old.flags.values():
                for outcome in flag.outcomes:
                    if outcome not in previous and outcome not in retiring:
                        retiring[outcome] = 0
        current: dict[Outcome, int] = {}
        if ruleset is not None:
            for flag in ruleset.flags.values():
                for outcome in flag.outcomes:
                    served = outcome.served
                    last = previous.pop(outcome, None)
                    if last is None:
                        last = retiring.pop(outcome, 0)
                    if served != last:
                        self._add(outcome, served - last, hour)
                    current[outcome] = served
        # Answers of an earlier ruleset: read now and once more at the next harvest (a call that
        # read the old ruleset just before the swap may still be adding), then forgotten.
        for outcome, last in retiring.items():
            if outcome.served != last:
                self._add(outcome, outcome.served - last, hour)
        self._retiring = {}
        for outcome, last in previous.items():
            served = outcome.served
            if served != last:
                self._add(outcome, served - last, hour)
            self._retiring[outcome] = served
        self._seen = current

    def _add(self, outcome: Outcome, n: int, hour: int) -> None:
        if n <= 0:
            return
        key = (outcome.flag_key, outcome.variant, outcome.reason, hour)
        if key in self._counts:
            self._counts[key] += n
        elif len(self._counts) + self._unsent_rows >= self.max_pending:
            self.dropped += n
        else:
            self._counts[key] = n

    def take_batch(self) -> Batch | None:
        """The oldest batch not yet accepted (a retry keeps its id), else a new one."""
        if self._unsent:
            return self._unsent[0]
        if not self._counts:
            return None
        keys = list(self._counts)[:MAX_COUNTS_PER_BATCH]
        items = [
            {
                "flag_key": flag_key,
                "variant": variant,
                "reason": reason,
                "hour": _iso(hour),
                "n": self._counts.pop((flag_key, variant, reason, hour)),
            }
            for flag_key, variant, reason, hour in keys
        ]
        batch = Batch("/v1/usage", uuid.uuid4().hex, items)
        self._unsent.append(batch)
        self._unsent_rows += len(items)
        return batch

    def settle(self, batch: Batch) -> None:
        """The batch was accepted, or refused for good: never send it again."""
        if batch in self._unsent:
            self._unsent.remove(batch)
            self._unsent_rows -= len(batch.items)

    @property
    def pending(self) -> int:
        return len(self._counts) + self._unsent_rows


class ExposureQueue:
    """Exposures waiting to be sent, one per (user, flag, variant) per ``period`` seconds.

    ``record`` runs on the caller's thread (any thread), so it takes a lock; it is only called when
    exposures are on. ``recent`` is an LRU of what was recorded within the period, at most
    ``cache_size`` entries: a pair pushed out of it early may be recorded again before its period
    ends (memory is the bound, not exactness).
    """

    def __init__(
        self,
        *,
        period: float = 3600.0,
        cache_size: int = 100_000,
        queue_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.period = period
        self.cache_size = cache_size
        self.queue_size = queue_size
        self.clock = clock
        self.dropped = 0
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._queue: list[dict[str, Any]] = []
        self._unsent: Batch | None = None

    def record(self, user_id: str, flag_key: str, variant: str) -> None:
        now = self.clock()
        key = (user_id, flag_key, variant)
        with self._lock:
            until = self._recent.get(key)
            if until is not None and until > now:
                return
            queued = len(self._queue) + (0 if self._unsent is None else len(self._unsent.items))
            if queued >= self.queue_size:
                self.dropped += 1
                return
            self._recent[key] = now + self.period
            self._recent.move_to_end(key)
            if len(self._recent) > self.cache_size:
                self._recent.popitem(last=False)
            self._queue.append(
                {"flag_key": flag_key, "variant": variant, "user_id": user_id, "ts": _iso(now)}
            )

    def take_batch(self) -> Batch | None:
        with self._lock:
            if self._unsent is None and self._queue:
                items = self._queue[:MAX_EXPOSURES_PER_BATCH]
                del self._queue[:MAX_EXPOSURES_PER_BATCH]
                self._unsent = Batch("/v1/exposures", uuid.uuid4().hex, items)
            return self._unsent

    def settle(self, batch: Batch) -> None:
        with self._lock:
            if self._unsent is batch:
                self._unsent = None

    @property
    def pending(self) -> int:
        return len(self._queue) + (0 if self._unsent is None else len(self._unsent.items))


class Reporter:
    """The thread that harvests usage and sends both kinds of batch every ``interval`` seconds."""

    def __init__(
        self,
        *,
        post: Post,
        ruleset: Callable[[], CompiledRuleset | None],
        interval: float = 10.0,
        usage: bool = True,
        exposures: ExposureQueue | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        name: str = "flagsvc-sdk-reporter",
    ) -> None:
        self.interval = interval
        self.usage = UsageCounter() if usage else None
        self.exposures = exposures
        self._post = post
        self._ruleset = ruleset
        self._log = logger or logging.getLogger("flagsvc_sdk")
        self._clock = clock
        self._name = name
        self.counts: Counter[str] = Counter()
        self._fresh()

    def _fresh(self) -> None:
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.usage is not None or self.exposures is not None

    def start(self) -> None:
        if not self.enabled or self.interval <= 0:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> bool:
        """Harvest and send what is due; whether everything was sent. Never raises."""
        try:
            with self._flushing:
                if self.usage is not None:
                    self.usage.harvest(self._ruleset(), self._clock())
                sent = True
                if self.usage is not None:
                    sent = self._send_all(self.usage.take_batch, self.usage.settle, "usage")
                if self.exposures is not None and sent:
                    sent = self._send_all(
                        self.exposures.take_batch, self.exposures.settle, "exposure"
                    )
                return sent
        except Exception:
            self.counts["report_failures"] += 1
            self._log.exception("flagsvc: reporting usage failed; will try again")
            return False

    def _send_all(
        self, take: Callable[[], Batch | None], settle: Callable[[Batch], None], what: str
    ) -> bool:
        while (batch := take()) is not None:
            try:
                status = self._post(batch.path, batch.body)
            except Exception as error:
                self.counts[f"{what}_send_failures"] += 1
                self._log.warning("flagsvc: cannot send %s (%s); keeping it", what, error)
                return False
            if 200 <= status < 300:
                settle(batch)
                self.counts[f"{what}_batches_sent"] += 1
                self.counts[f"{what}_items_sent"] += len(batch.items)
            elif status in RETRY_LATER or status >= 500:
                self.counts[f"{what}_send_failures"] += 1
                self._log.warning("flagsvc: %s answered %d; keeping the batch", batch.path, status)
                return False
            else:
                settle(batch)
                self.counts[f"{what}_batches_refused"] += 1
                self._log.error(
                    "flagsvc: %s refused a batch of %d (HTTP %d); dropped",
                    batch.path,
                    len(batch.items),
                    status,
                )
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, then send what is left once (no retries)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self._thread is not None:
            self.flush()

    def after_fork(self) -> None:
        """In a forked child: new thread and locks, and counting from zero."""
        self._fresh()
        self.counts = Counter()
        if self.usage is not None:
            self.usage.baseline(self._ruleset())
            self.usage.dropped = 0
        if self.exposures is not None:
            self.exposures.reset()
            self.exposures.dropped = 0

    def replaced(self, ruleset: CompiledRuleset) -> None:
        if self.usage is not None:
            self.usage.replaced(ruleset)

    def stats(self) -> dict[str, int]:
        stats = dict(self.counts)
        if self.usage is not None:
            stats["usage_pending"] = self.usage.pending
            stats["usage_dropped"] = self.usage.dropped
        if self.exposures is not None:
            stats["exposures_pending"] = self.exposures.pending
            stats["exposures_dropped"] = self.exposures.dropped
        return stats
