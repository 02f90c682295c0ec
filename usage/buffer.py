"""Counting the server's own evaluations without a database write per request (issue 15, item 1).

An evaluation adds to an in-memory counter (a dict increment under a lock: well under a microsecond);
a background thread flushes the counter every USAGE_FLUSH_SECONDS through `usage_record_batches`, one
batch per tenant with an id of its own, every tenant in one transaction. A flush that fails (the database is down) keeps its batches, ids and all,
and retries them as they were: the id makes a retry of a batch that did commit harmless. The batches
kept while the database is away are bounded (USAGE_MAX_PENDING_COUNTS rows; past it the oldest are
dropped and counted in the log). Each process counts its own evaluations and adds them: correct across
workers and processes. After a fork the child starts with an empty counter and its own thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections

from usage.services import Batch, Count, usage_record_batches

logger = logging.getLogger("flagsvc.usage")

Key = tuple[int, str, str, str, int]  # tenant id, flag key, variant, reason, hour (epoch seconds)


class UsageBuffer:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[Key, list[float]] = {}  # key → [n, last evaluation time]
        self._pending: list[Batch] = []
        self._sequence = 0
        self._instance = uuid.uuid4().hex[:12]
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.dropped = 0
        # USAGE_COUNTING, read once: the evaluation path checks this attribute (a Django settings read
        # costs microseconds on every request: benchmarks/RESULTS.md, usage counting).
        self.counting = bool(settings.USAGE_COUNTING)

    # The evaluation path ------------------------------------------------------------------------

    def add(self, tenant_id: int, flag_key: str, variant: str | None, reason: str, n: int = 1) -> None:
        """Count `n` answers of one flag (nothing when USAGE_COUNTING is off)."""
        if not self.counting:
            return
        now = self.clock()
        key = (tenant_id, flag_key, variant or "", reason, int(now // 3600) * 3600)
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                self._counts[key] = [n, now]
            else:
                entry[0] += n
                entry[1] = now
        if self._thread is None:
            self._start()

    def add_many(self, tenant_id: int, served: Iterable[tuple[str, str | None, str]]) -> None:
        """Several answers of one request (bulk): (flag key, variant, reason) each."""
        if not self.counting:
            return
        now = self.clock()
        hour = int(now // 3600) * 3600
        with self._lock:
            counts = self._counts
            for flag_key, variant, reason in served:
                key = (tenant_id, flag_key, variant or "", reason, hour)
                entry = counts.get(key)
                if entry is None:
                    counts[key] = [1, now]
                else:
                    entry[0] += 1
                    entry[1] = now
        if self._thread is None:
            self._start()

    # Flushing -----------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what was counted (and what earlier flushes could not); how many counts were added
        (a batch already counted, or of a tenant deleted since, adds none)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            batches = self._pending + self._batches(counts)
            self._pending = []
        if not batches:
            return 0
        try:
            counted = usage_record_batches(batches)
        except Exception:
            logger.warning("usage flush failed; kept for the next one", exc_info=True)
            self._keep(batches)
            return 0
        return sum(len(batch.counts) for batch, fresh in zip(batches, counted, strict=True) if fresh)

    def _batches(self, counts: dict[Key, list[float]]) -> list[Batch]:
        by_tenant: dict[int, list[Count]] = {}
        for (tenant_id, flag_key, variant, reason, hour), (n, last) in counts.items():
            by_tenant.setdefault(tenant_id, []).append(
                Count(
                    flag_key=flag_key,
                    variant=variant,
                    reason=reason,
                    hour=datetime.fromtimestamp(hour, UTC),
                    n=int(n),
                    last_at=datetime.fromtimestamp(last, UTC),
                )
            )
        batches = []
        for tenant_id, rows in by_tenant.items():
            self._sequence += 1
            batches.append(Batch(tenant_id, f"server:{self._instance}:{self._sequence}", rows))
        return batches

    def _keep(self, batches: list[Batch]) -> None:
        limit = settings.USAGE_MAX_PENDING_COUNTS
        with self._lock:
            kept = batches + self._pending
            while kept and sum(len(b.counts) for b in kept) > limit:
                self.dropped += len(kept.pop(0).counts)  # the oldest first
            self._pending = kept
        if self.dropped:
            logger.error(
                "usage counts dropped while the database was unavailable", extra={"dropped": self.dropped}
            )

    # The background thread ----------------------------------------------------------------------

    def _start(self) -> None:
        interval = float(settings.USAGE_FLUSH_SECONDS)
        if interval <= 0:
            return  # flushed by hand (tests, management commands)
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(interval,), name="usage-flush", daemon=True
            )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            finally:
                close_old_connections()

    def stop(self) -> None:
        """Flush what is left and stop the thread (process exit, gunicorn's worker_exit)."""
        self._stop.set()
        try:
            self.flush()
        except Exception:
            logger.warning("usage flush at exit failed", exc_info=True)

    def reset(self) -> None:
        """Forget everything counted and start over (a forked child; tests)."""
        self._lock = threading.Lock()
        self._counts = {}
        self._pending = []
        self._instance = uuid.uuid4().hex[:12]
        self._sequence = 0
        self._thread = None
        self._stop = threading.Event()


USAGE = UsageBuffer()
os.register_at_fork(after_in_child=USAGE.reset)
atexit.register(USAGE.stop)


def _usage_counting_changed(*, setting: str, value: object, **kwargs: object) -> None:
    """Tests that override USAGE_COUNTING reach the attribute the evaluation path reads."""
    if setting == "USAGE_COUNTING":
        USAGE.counting = bool(value)


setting_changed.connect(_usage_counting_changed, dispatch_uid="usage_counting_changed")
