"""``FlagClient``: flags evaluated in the caller's process, from the signed snapshot, kept fresh by
the change-event stream.

One background thread does all the I/O: it fetches a token (``POST /v1/auth/token``) and renews it
before it expires and on a 401, loads ``GET /v1/snapshot``, verifies its Ed25519 signature and
compiles it with the engine the server uses, then follows ``GET /v1/events`` and refetches the
snapshot (``If-None-Match``) when an event names a ruleset version it does not have. When the stream
is unavailable it polls the snapshot's ``ETag`` instead and retries the stream with backoff and
jitter. A snapshot whose signature does not verify is refused: the last good one keeps serving.

Evaluation reads one reference, the current compiled ruleset, which the thread replaces whole when a
new snapshot arrives (the engine's rulesets are never changed once built): no lock on the hot path,
and every call sees one consistent ruleset. Evaluation never raises: every problem answers the
caller's default with reason ``ERROR`` and an error code.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flagsvc_sdk import signing, snapshots
from flagsvc_sdk.engine import (
    CompiledRuleset,
    EvaluationResult,
    ValidationFailed,
    error_result,
    evaluate,
    evaluate_many,
    validate_user,
)
from flagsvc_sdk.engine.values import plain_user
from flagsvc_sdk.local import LocalFlags
from flagsvc_sdk.reporting import ExposureQueue, Reporter
from flagsvc_sdk.snapshots import Snapshot, SnapshotRefused
from flagsvc_sdk.sse import Event, EventParser

__all__ = [
    "FLAG_NOT_FOUND",
    "GENERAL",
    "INVALID_CONTEXT",
    "PROVIDER_NOT_READY",
    "TYPE_MISMATCH",
    "FlagClient",
]

FLAG_NOT_FOUND: Final = "FLAG_NOT_FOUND"
"""No live flag with this key in the snapshot (unknown or archived)."""
TYPE_MISMATCH: Final = "TYPE_MISMATCH"
"""The flag serves values of another type than the typed call asks for."""
INVALID_CONTEXT: Final = "INVALID_CONTEXT"
"""The user is not ``{"id": non-empty string, "attributes": {...}}`` (the server answers 422)."""
PROVIDER_NOT_READY: Final = "PROVIDER_NOT_READY"
"""No snapshot yet: not from the service, the bootstrap file or the cache."""
GENERAL: Final = "GENERAL"
"""Anything else (a bug): logged with its traceback."""

USER_AGENT: Final = "flagsvc-sdk-python/0.1.0"
STREAM_UNAVAILABLE: Final = frozenset({404, 405, 406, 501})
"""The stream is not served at this URL (gunicorn answers 406 and names the stream process)."""
CATCH_UP_DELAYS: Final = (0.02, 0.05, 0.08, 0.1, 0.1, 0.1, 0.15, 0.2, 0.4, 0.8)
"""After an event, how long to wait before asking again while the snapshot served is older than the
event's ruleset version (another server process may not have seen the write yet)."""

_KINDS: Final[dict[str, Callable[[Any], bool]]] = {
    "boolean": lambda value: type(value) is bool,
    "string": lambda value: type(value) is str,
    "number": lambda value: type(value) is int or type(value) is float,
    "json": lambda value: type(value) is dict or type(value) is list,
}


class ServiceError(Exception):
    """An answer of the service that the client cannot use; ``retry_after`` from a 429 or 503."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _StreamUnavailable(ServiceError):
    pass


class Backoff:
    """Exponential backoff with full jitter: each wait is random in [base/2, base], base doubling
    from ``initial`` up to ``cap``."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self.initial, self.cap = initial, cap
        self.attempts = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * (2**self.attempts))
        self.attempts += 1
        return random.uniform(base / 2, base)  # noqa: S311 - jitter, not a secret

    def reset(self) -> None:
        self.attempts = 0


class FlagClient:
    """Evaluate flags locally from the service's signed snapshot.

    ``base_url`` is the service (``https://flags.example.com``); ``events_url`` where
    ``GET /v1/events`` is served when that is not the same place (``make run`` serves it on
    ``PORT + 1``; behind the proxy it is the same URL). ``bootstrap`` is a snapshot written by
    ``manage.py publish_snapshot`` (a file, a directory or an ``https://`` URL) to start from
    before the service answers; ``cache_dir`` is where the last good snapshot is kept so that a
    restart during an outage still serves. ``trusted_keys`` pins the public keys
    (``{kid: base64url}`` or a ``/v1/snapshot/keys`` document); without it they come from
    ``GET /v1/snapshot/keys``.

    Use one client per process and tenant, for the life of the process; ``close()`` (or ``with``)
    stops it. It survives ``os.fork()``: the child restarts its own background thread.

    Usage reports (``report_usage``, on by default): the client counts what it serves per flag,
    variant, reason and hour and sends the counts to ``POST /v1/usage`` every ``report_interval``
    seconds and on ``close()`` (``flagsvc_sdk.reporting``). Exposures (``exposures=True``, off by
    default): one event per user, flag and variant per ``exposure_period`` seconds, sent to
    ``POST /v1/exposures`` with the same rhythm; at most ``exposure_queue_size`` wait to be sent
    and ``exposure_cache_size`` are remembered for deduplication. With exposures on, the typed calls
    take the full evaluation path (they need the variant and the user id).
    """

    _thread: threading.Thread | None

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        tenant: str,
        *,
        events_url: str | None = None,
        stream: bool = True,
        poll_interval: float = 15.0,
        bootstrap: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        trusted_keys: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        stream_read_timeout: float = 40.0,
        max_backoff: float = 30.0,
        start_wait: float = 5.0,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
        report_usage: bool = True,
        report_interval: float = 10.0,
        exposures: bool = False,
        exposure_period: float = 3600.0,
        exposure_cache_size: int = 100_000,
        exposure_queue_size: int = 10_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.events_url = (events_url or base_url).rstrip("/")
        self.tenant = tenant
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._use_stream = stream
        self.poll_interval = poll_interval
        self._timeout = timeout
        self._stream_read_timeout = stream_read_timeout
        self._max_backoff = max_backoff
        self._log = logger or logging.getLogger("flagsvc_sdk")
        self._clock = clock
        self._cache_file = None if cache_dir is None else Path(cache_dir) / f"{tenant}.json"
        self._keys_file = None if cache_dir is None else Path(cache_dir) / f"{tenant}.keys.json"
        self._pinned = trusted_keys is not None
        self._keys: dict[str, Ed25519PublicKey] = (
            signing.pinned_keys(trusted_keys) if trusted_keys is not None else {}
        )
        # Evaluation reads one reference, ``_local.ruleset``; the background thread replaces it.
        self._local = LocalFlags()
        self._local.miss = self._default
        self.bool_value = self._local.bool_value  # type: ignore[method-assign]
        self.string_value = self._local.string_value  # type: ignore[method-assign]
        self.number_value = self._local.number_value  # type: ignore[method-assign]
        self.json_value = self._local.json_value  # type: ignore[method-assign]
        self._exposures = (
            ExposureQueue(
                period=exposure_period,
                cache_size=exposure_cache_size,
                queue_size=exposure_queue_size,
            )
            if exposures
            else None
        )
        if self._exposures is not None:
            # An exposure needs the variant and the user id: the typed calls take the full path.
            self.bool_value = functools.partial(self._typed, "boolean")  # type: ignore[method-assign]
            self.string_value = functools.partial(self._typed, "string")  # type: ignore[method-assign]
            self.number_value = functools.partial(self._typed, "number")  # type: ignore[method-assign]
            self.json_value = functools.partial(self._typed, "json")  # type: ignore[method-assign]
        self._reporter = Reporter(
            post=self._post_report,
            ruleset=lambda: self._local.ruleset,
            interval=report_interval,
            usage=report_usage,
            exposures=self._exposures,
            logger=self._log,
            name=f"flagsvc-sdk-reporter-{tenant}",
        )
        self._snapshot: Snapshot | None = None
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._cursor: str | None = None
        self._listeners: list[Callable[[FlagClient], None]] = []
        self._errors: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._closed = False
        self.source: str | None = None
        """Where the snapshot serving now came from: ``service``, ``bootstrap`` or ``cache``."""
        self._fresh_state()
        os.register_at_fork(after_in_child=functools.partial(_restart_in_child, weakref.ref(self)))
        self._load_local(bootstrap)
        if start:
            self.start()
            if start_wait > 0:
                self.wait_until_ready(start_wait)

    # -- evaluation: the hot path ----------------------------------------------------------------

    def evaluate(self, flag_key: str, user: Any, default: Any = None) -> EvaluationResult:
        """The server's answer shape (``variant``, ``value``, ``reason``, ``rule_id``, ``details``
        with ``bucket`` and ``flag_version``; ``to_dict()`` is ``POST /v1/evaluate``'s body).

        Never raises: when no variant can be served, ``value`` is ``default``, ``reason`` ``ERROR``
        and ``error_code`` one of ``FLAG_NOT_FOUND``, ``INVALID_CONTEXT``, ``PROVIDER_NOT_READY``,
        ``GENERAL``.
        """
        return self._evaluate(self._local.ruleset, flag_key, user, default)

    def _evaluate(
        self,
        ruleset: CompiledRuleset | None,
        flag_key: Any,
        user: Any,
        default: Any,
        *,
        counted: bool = False,
    ) -> EvaluationResult:
        """``evaluate`` on a ruleset the caller read (the OpenFeature provider also looks at the
        flag it came from). An answer served is counted for the usage report (unless ``counted``:
        the typed call's fast path already did) and, with exposures on, recorded as one."""
        if ruleset is None:
            return self._failed(flag_key, PROVIDER_NOT_READY, default)
        if not isinstance(flag_key, str):  # no flag has such a key (compiled: a TypeError)
            return self._failed(flag_key, FLAG_NOT_FOUND, default)
        try:
            checked = validate_user(user)
        except ValidationFailed:
            return self._failed(flag_key, INVALID_CONTEXT, default)
        except Exception:
            return self._failed(flag_key, GENERAL, default, exc_info=True)
        try:
            result = evaluate(ruleset, flag_key, checked)
        except Exception:
            return self._failed(flag_key, GENERAL, default, exc_info=True)
        if result.variant is None:
            return self._failed(flag_key, result.error_code or FLAG_NOT_FOUND, default)
        if not counted:
            result.outcome.served += 1
        if self._exposures is not None:
            self._exposures.record(checked["id"], flag_key, result.variant)
        return result

    # The typed calls. The constructor binds each to its compiled twin in ``local.LocalFlags`` (one
    # call into native code); these definitions document them and serve if that binding is gone.

    def bool_value(self, flag_key: str, user: Any, default: bool) -> bool:
        """The flag's value for this user, or ``default`` when it cannot serve a boolean."""
        return self._local.bool_value(flag_key, user, default)  # type: ignore[no-any-return]

    def string_value(self, flag_key: str, user: Any, default: str) -> str:
        """The flag's value for this user, or ``default`` when it cannot serve a string."""
        return self._local.string_value(flag_key, user, default)  # type: ignore[no-any-return]

    def number_value(self, flag_key: str, user: Any, default: float) -> float:
        """An ``int`` or ``float`` as the flag stores it, or ``default``."""
        return self._local.number_value(flag_key, user, default)  # type: ignore[no-any-return]

    def json_value(self, flag_key: str, user: Any, default: Any) -> Any:
        """An object or array (a fresh copy: changing it changes nothing else), or ``default``."""
        return self._local.json_value(flag_key, user, default)

    def all_flags(self, user: Any) -> dict[str, EvaluationResult]:
        """Every live flag's answer for this user (``POST /v1/evaluate/bulk`` without keys); an
        empty dict when not ready or the user is invalid."""
        ruleset = self._local.ruleset
        if ruleset is None:
            self._errors[PROVIDER_NOT_READY] += 1
            return {}
        try:
            results = evaluate_many(ruleset, validate_user(user))
            for result in results.values():  # counted as the server counts its bulk answers
                result.outcome.served += 1
            return results
        except ValidationFailed:
            self._errors[INVALID_CONTEXT] += 1
        except Exception:
            self._errors[GENERAL] += 1
            self._log.exception("flagsvc: all_flags failed")
        return {}

    def _typed(self, kind: str, flag_key: Any, user: Any, default: Any) -> Any:
        """A typed call with exposures on: the full path, which records the exposure."""
        return self._default(flag_key, user, default, kind)

    def _default(self, flag_key: Any, user: Any, default: Any, kind: str) -> Any:
        """The slow path of a typed call (``LocalFlags.miss``): evaluate again with the full user
        check, which either answers (a user in an unusual but valid form) or says why not."""
        try:
            ruleset = self._local.ruleset
            # The fast path counted the answer when it got as far as the engine (a value of
            # another type); with exposures on there is no fast path.
            counted = (
                self._exposures is None
                and ruleset is not None
                and isinstance(flag_key, str)
                and flag_key in ruleset.flags
                and plain_user(user) is not None
            )
            result = self._evaluate(ruleset, flag_key, user, default, counted=counted)
            if result.variant is None:
                return default
            value = result.value
            if _KINDS[kind](value):
                return value
            self._errors[TYPE_MISMATCH] += 1
            self._once(
                str(flag_key),
                TYPE_MISMATCH,
                f"flagsvc: flag {str(flag_key)[:128]!r} serves no {kind} value; "
                "answering the default",
            )
        except Exception:
            self._errors[GENERAL] += 1
            self._log.exception("flagsvc: evaluating %r failed; answering the default", flag_key)
        return default

    def _failed(
        self, flag_key: Any, code: str, default: Any, *, exc_info: bool = False
    ) -> EvaluationResult:
        self._errors[code] += 1
        if exc_info:
            self._log.exception("flagsvc: evaluating %r failed; answering the default", flag_key)
        elif code == FLAG_NOT_FOUND:
            self._once(str(flag_key), code, f"flagsvc: no live flag {str(flag_key)[:128]!r}")
        return error_result(str(flag_key), code, default)

    def _once(self, flag_key: str, code: str, message: str) -> None:
        if len(self._logged) < 1000 and (flag_key, code) not in self._logged:
            self._logged.add((flag_key, code))
            self._log.warning(message)

    # -- state -----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether a snapshot is loaded (from the service, the bootstrap file or the cache)."""
        return self._local.ruleset is not None

    @property
    def ruleset_version(self) -> str | None:
        ruleset = self._local.ruleset
        return None if ruleset is None else ruleset.version

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def wait_for_version(self, version: str, timeout: float) -> bool:
        """Wait until the snapshot serving is at ``version`` (a test and benchmark helper)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.ruleset_version != version:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def on_change(self, listener: Callable[[FlagClient], None]) -> None:
        """Call ``listener(client)`` from the background thread after each new snapshot."""
        self._listeners.append(listener)

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: snapshots loaded and refused, stream connections, errors by
        code. Counted without locks: exact when quiet, close under load."""
        return {
            "ruleset_version": self.ruleset_version,
            "source": self.source,
            **dict(self._counts),
            **self._reporter.stats(),
            "errors": dict(self._errors),
        }

    def flush(self) -> bool:
        """Send the usage counts and exposures gathered so far now; whether all were accepted.
        Never raises (the background thread does this every ``report_interval`` seconds)."""
        return self._reporter.flush()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (the constructor does unless ``start=False``)."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"flagsvc-sdk-{self.tenant}", daemon=True
        )
        self._thread.start()
        self._reporter.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread and close connections; evaluation keeps answering from the
        last snapshot."""
        self._closed = True
        self._stop.set()
        self._interrupt_stream()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._reporter.close(timeout)  # sends what is left, once
        self._http.close()
        self._report_http.close()

    def __enter__(self) -> FlagClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _fresh_state(self) -> None:
        """Threads, events, locks and connections: made anew in a forked child, whose copies of the
        parent's may be held by a thread that does not exist there."""
        self._stop = threading.Event()
        self._ready = threading.Event()
        if self._local.ruleset is not None:
            self._ready.set()
        self._changed = threading.Condition()
        self._thread = None
        self._stream_response: httpx.Response | None = None
        self._http = httpx.Client(
            timeout=self._timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=False
        )
        # The reports have a connection of their own: the other one may be holding the stream.
        self._report_http = httpx.Client(
            timeout=self._timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=False
        )
        self._token_lock = threading.Lock()

    def _after_fork(self) -> None:
        self._fresh_state()  # the parent's connections stay the parent's: not closed here
        self._reporter.after_fork()  # what the parent counted is the parent's to report
        self._token = None
        self._counts["forks"] += 1
        if not self._closed:
            self.start()

    # -- the background thread -------------------------------------------------------------------

    def _run(self) -> None:
        stream_backoff = Backoff(cap=self._max_backoff)
        poll_backoff = Backoff(cap=min(self._max_backoff, self.poll_interval))
        stream_retry_at = 0.0
        while not self._stop.is_set():
            if self._use_stream and time.monotonic() >= stream_retry_at:
                started, retry_after = time.monotonic(), 0.0
                try:
                    self._follow_stream()
                except _StreamUnavailable as error:
                    stream_retry_at = time.monotonic() + max(300.0, self.poll_interval)
                    self._log.warning(
                        "flagsvc: the event stream is not served at %s (%s); polling the snapshot "
                        "every %.0f s instead. Pass events_url= the stream's address.",
                        self.events_url,
                        error,
                        self.poll_interval,
                    )
                    continue
                except Exception as error:
                    if self._stop.is_set():
                        return  # close() shut the stream down: not a failure
                    retry_after = self._after_failure(error, "event stream")
                if self._stop.is_set():
                    return
                self._counts["stream_disconnects"] += 1
                if time.monotonic() - started > 10:
                    stream_backoff.reset()
                # The stream is down: poll once before each retry, so that a lost stream costs
                # at most the backoff in freshness.
                try:
                    self._refresh(conditional=True)
                except Exception as error:
                    retry_after = max(retry_after, self._after_failure(error, "snapshot"))
                self._stop.wait(max(stream_backoff.next(), retry_after))
                continue
            try:
                self._refresh(conditional=True)
                poll_backoff.reset()
                delay = self.poll_interval * random.uniform(0.8, 1.0)  # noqa: S311 - jitter
            except Exception as error:
                delay = max(poll_backoff.next(), self._after_failure(error, "snapshot"))
            self._stop.wait(delay)

    def _after_failure(self, error: Exception, what: str) -> float:
        self._counts[f"{what.replace(' ', '_')}_failures"] += 1
        if isinstance(error, ServiceError | httpx.HTTPError | OSError):
            self._log.warning(
                "flagsvc: %s unavailable (%s); serving the last snapshot", what, error
            )
        else:
            self._log.exception("flagsvc: %s failed; serving the last snapshot", what)
        retry_after = getattr(error, "retry_after", None)
        return float(retry_after) if retry_after else 0.0

    def _follow_stream(self) -> None:
        """Hold ``GET /v1/events`` open; after connecting, catch up with the snapshot, then refetch
        it whenever an event names a ruleset version we do not have. Returns when it ends."""
        for attempt in (1, 2):
            headers = {**self._auth_headers(), "Accept": "text/event-stream"}
            headers["Accept-Encoding"] = "identity"
            if self._cursor is not None:
                headers["Last-Event-ID"] = self._cursor
            timeout = httpx.Timeout(self._timeout, read=self._stream_read_timeout)
            with self._http.stream(
                "GET", f"{self.events_url}/v1/events", headers=headers, timeout=timeout
            ) as response:
                if response.status_code == 401 and attempt == 1:
                    self._token = None
                    continue
                if response.status_code in STREAM_UNAVAILABLE:
                    raise _StreamUnavailable(f"HTTP {response.status_code}")
                if response.status_code != 200:
                    raise _service_error(response, "the event stream")
                self._stream_response = response
                self._counts["stream_connects"] += 1
                try:
                    self._read_stream(response)
                finally:
                    self._stream_response = None
                return

    def _read_stream(self, response: httpx.Response) -> None:
        self._refresh(conditional=False)  # whatever changed while we were not listening
        checked_at = time.monotonic()
        parser = EventParser()
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            event = parser.feed(line)
            if event is not None:
                self._on_event(event)
                checked_at = time.monotonic()
            elif time.monotonic() - checked_at >= self.poll_interval:
                # A keep-alive: also a chance to check the ETag, in case an event was lost.
                self._refresh(conditional=True)
                checked_at = time.monotonic()

    def _on_event(self, event: Event) -> None:
        if event.id is not None:
            self._cursor = event.id
        self._counts["events"] += 1
        if event.event == "reset":
            self._refresh(conditional=False)
            return
        try:
            data = json.loads(event.data) if event.data else {}
            target = data.get("ruleset_version") if isinstance(data, dict) else None
        except ValueError:
            target = None
        wanted = None if target is None else str(target)
        if wanted is not None and not _newer(wanted, self.ruleset_version):
            return
        self._refresh(conditional=True)
        for delay in CATCH_UP_DELAYS:
            if wanted is None or not _newer(wanted, self.ruleset_version):
                return
            if self._stop.wait(delay):
                return
            self._refresh(conditional=True)

    def _interrupt_stream(self) -> None:
        """Wake the thread out of a blocking read: shut the stream's socket down."""
        response = self._stream_response
        if response is None:
            return
        try:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: S110 - best effort; the read timeout ends it anyway
            pass

    # -- HTTP ------------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        with self._token_lock:  # the reporter's thread asks too
            if self._token is None or self._clock() >= self._token_renew_at:
                self._fetch_token()
            return {"Authorization": f"Bearer {self._token}", "X-Tenant-ID": self.tenant}

    def _post_report(self, path: str, body: dict[str, Any]) -> int:
        """The reporter's ``post``: an authorised POST on its own connection; a 401 renews the
        token once."""
        for attempt in (1, 2):
            response = self._report_http.post(
                f"{self.base_url}{path}", json=body, headers=self._auth_headers()
            )
            if response.status_code == 401 and attempt == 1:
                with self._token_lock:
                    self._token = None
                continue
            return response.status_code
        raise AssertionError("unreachable")

    def _fetch_token(self) -> None:
        response = self._http.post(f"{self.base_url}/v1/auth/token", json=self._credentials)
        if response.status_code != 200:
            raise _service_error(response, "POST /v1/auth/token")
        body = response.json()
        token, ttl = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not isinstance(ttl, int | float):
            raise ServiceError("POST /v1/auth/token answered without access_token/expires_in")
        self._token = token
        # Renew well before it expires: at 80 % of its life, and at least 30 s before the end.
        self._token_renew_at = self._clock() + max(0.0, min(ttl * 0.8, ttl - 30))
        self._counts["tokens"] += 1

    def _get(self, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """An authorised GET; a 401 renews the token once."""
        for attempt in (1, 2):
            response = self._http.get(
                f"{self.base_url}{path}", headers={**self._auth_headers(), **(headers or {})}
            )
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            return response
        raise AssertionError("unreachable")

    # -- snapshots -------------------------------------------------------------------------------

    def _refresh(self, *, conditional: bool) -> bool:
        """Fetch ``GET /v1/snapshot`` (with ``If-None-Match`` when ``conditional``); whether a new
        snapshot now serves."""
        current = self._snapshot
        headers = {}
        if conditional and current is not None and current.etag and self.source == "service":
            headers["If-None-Match"] = current.etag
        response = self._get("/v1/snapshot", headers)
        self._counts["snapshot_requests"] += 1
        if response.status_code == 304:
            return False
        if response.status_code != 200:
            raise _service_error(response, "GET /v1/snapshot")
        return self._install(
            response.content,
            response.headers.get(signing.SIGNATURE_HEADER),
            source="service",
            etag=response.headers.get("ETag"),
        )

    def _fetch_keys(self) -> None:
        response = self._get("/v1/snapshot/keys")
        if response.status_code != 200:
            raise _service_error(response, "GET /v1/snapshot/keys")
        self._keys = signing.parse_keys(response.content)
        self._counts["key_fetches"] += 1
        if self._keys_file is not None:
            try:
                snapshots.write_atomically(self._keys_file, response.content)
            except OSError as error:
                self._log.warning(
                    "flagsvc: cannot keep the snapshot keys in %s: %s", self._keys_file, error
                )

    def _install(
        self,
        body: bytes,
        signature: str | None,
        *,
        source: str,
        etag: str | None = None,
        only_if_newer: bool = False,
    ) -> bool:
        """Verify, compile and swap in a snapshot; refuse (log, count, keep the last good one)
        one whose signature does not verify or that does not compile."""
        current = self._snapshot
        if current is not None and body == current.body and signature == current.signature:
            if etag is not None and source == "service":
                self._snapshot = Snapshot(
                    current.body, current.signature, current.kid, current.ruleset, etag
                )
                self.source = source
            return False
        try:
            if not self._keys and not self._pinned and source == "service":
                self._fetch_keys()
            try:
                snapshot = snapshots.load(
                    body, signature, self._keys, tenant=self.tenant, etag=etag
                )
            except signing.SignatureRefused as error:
                if not (error.unknown_key and not self._pinned and source == "service"):
                    raise
                self._fetch_keys()  # a key published since we fetched them (rotation)
                snapshot = snapshots.load(
                    body, signature, self._keys, tenant=self.tenant, etag=etag
                )
        except signing.SignatureRefused as error:
            self._counts["signature_failures"] += 1
            self._log.error(
                "flagsvc: refused a snapshot from the %s: %s; the last good snapshot keeps serving",
                source,
                error,
            )
            return False
        except SnapshotRefused as error:
            self._counts["refused_snapshots"] += 1
            self._log.error("flagsvc: refused a snapshot from the %s: %s", source, error)
            return False
        if (
            only_if_newer
            and current is not None
            and _generated_at(current) >= _generated_at(snapshot)
        ):
            return False
        self._swap(snapshot, source)
        if source == "service" and self._cache_file is not None:
            try:
                snapshots.write_files(self._cache_file, body, snapshot.signature)
            except OSError as error:
                self._log.warning(
                    "flagsvc: cannot keep the snapshot in %s: %s", self._cache_file, error
                )
        return True

    def _swap(self, snapshot: Snapshot, source: str) -> None:
        with self._changed:
            old = self._local.ruleset
            self._snapshot = snapshot
            self._local.ruleset = snapshot.ruleset  # the one reference evaluation reads
            if old is not None:
                self._reporter.replaced(old)
            self.source = source
            self._counts["snapshots_loaded"] += 1
            self._changed.notify_all()
        self._ready.set()
        self._log.info(
            "flagsvc: serving ruleset version %s of tenant %s (%d flags, from the %s)",
            snapshot.version,
            self.tenant,
            len(snapshot.ruleset.flags),
            source,
        )
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                self._log.exception("flagsvc: a change listener failed")

    def _load_local(self, bootstrap: str | os.PathLike[str] | None) -> None:
        """Start from the bootstrap snapshot and/or the last good one kept on disk, whichever is
        newer (``generated_at``), both verified like any other."""
        if not self._pinned and self._keys_file is not None and self._keys_file.is_file():
            try:
                self._keys = signing.parse_keys(self._keys_file.read_bytes())
            except (OSError, ValueError) as error:
                self._log.warning("flagsvc: ignoring the kept snapshot keys: %s", error)
        if bootstrap is not None:
            try:
                body, signature = self._read_bootstrap(bootstrap)
                if not self._keys and not self._pinned:
                    self._fetch_keys()
                self._install(body, signature, source="bootstrap")
            except Exception as error:
                self._counts["bootstrap_failures"] += 1
                self._log.error(
                    "flagsvc: cannot start from the bootstrap snapshot %s: %s", bootstrap, error
                )
        if self._cache_file is not None and snapshots.signature_path(self._cache_file).is_file():
            try:
                body, signature = snapshots.read_file(self._cache_file, self.tenant)
            except OSError as error:
                self._log.warning("flagsvc: cannot read the kept snapshot: %s", error)
            else:
                self._install(body, signature, source="cache", only_if_newer=True)

    def _read_bootstrap(self, location: str | os.PathLike[str]) -> tuple[bytes, str]:
        text = os.fspath(location)
        if text.startswith(("http://", "https://")):
            # A CDN or object store: no token of ours goes there.
            response = self._http.get(text)
            if response.status_code != 200:
                raise ServiceError(f"GET {text} answered {response.status_code}")
            signature = response.headers.get(signing.SIGNATURE_HEADER)
            if not signature:
                signed = self._http.get(text + snapshots.SIGNATURE_SUFFIX)
                if signed.status_code != 200:
                    raise ServiceError(f"no signature for {text}")
                signature = signed.text.strip()
            return response.content, signature
        return snapshots.read_file(Path(text), self.tenant)


def _restart_in_child(reference: weakref.ReferenceType[FlagClient]) -> None:
    client = reference()
    if client is not None:
        client._after_fork()


def _newer(version: str, current: str | None) -> bool:
    """Whether ``version`` (from an event) is one the client does not have yet. Versions are
    decimal counters; anything else is compared for equality only."""
    if current is None:
        return True
    if version.isdecimal() and current.isdecimal():
        return int(version) > int(current)
    return version != current


def _generated_at(snapshot: Snapshot) -> str:
    try:
        value = json.loads(snapshot.body).get("generated_at")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _service_error(response: httpx.Response, what: str) -> ServiceError:
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header is not None and header.strip().isdecimal():
        retry_after = float(header.strip())
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return ServiceError(
        f"{what} answered {response.status_code}{f' ({code})' if code else ''}",
        retry_after=retry_after,
    )
