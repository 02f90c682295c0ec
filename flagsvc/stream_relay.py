"""The change-event stream asked of gunicorn's port, relayed to the stream process.

`GET /v1/events` as Server-Sent Events is served by the stream process (ADR 0012): a subscriber holds
its connection for hours, and a gunicorn thread held that long is one that evaluation no longer has.
Behind nginx (`docker compose`) the same URL reaches the stream process; with `make run` it listens on
`PORT + 1`. A client that asks gunicorn's port (api.md names one base URL) got 406 and had to know
the other port. Now the worker's event loop hands such a request, read whole, to the stream process at
`EVENTS_HOST:EVENTS_PORT`, and a thread of the relay's own, not one of the request threads, pumps the
bytes both ways until either side closes. The stream process authenticates, negotiates and logs the
request as if the client had come to it directly.

At most `EVENTS_RELAY_MAX` streams per worker process at once: beyond that the request goes on to
Django, which answers 406 naming the stream process, as it does when relaying is off (`EVENTS_PORT`
is gunicorn's own port, or `EVENTS_RELAY_MAX=0`). A stream process that does not answer is a 503
`unavailable` with `Retry-After`, which every SSE client retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Final

logger = logging.getLogger("flagsvc.stream_relay")

CONNECT_TIMEOUT: Final = 2.0
WRITE_TIMEOUT: Final = 30.0
"""A subscriber that takes nothing for this long while an event waits is dropped (it reconnects)."""
_CHUNK: Final = 64 * 1024
STREAM_PATH: Final = "/v1/events"

ErrorAnswer = Callable[[int, str], bytes]
"""Writes the complete error response for the relayed request: (status, message) → bytes."""


def asks_for_event_stream(method: str | None, path: str | None, accept: str | None) -> bool:
    """A request the stream process should answer: `GET /v1/events` that accepts `text/event-stream`
    (the stream process negotiates as the view does, JSON included)."""
    return method == "GET" and path == STREAM_PATH and "text/event-stream" in (accept or "").lower()


class StreamRelay:
    """Relays whole SSE requests to the stream process, one thread per relayed stream."""

    def __init__(self, target: tuple[str, int], max_streams: int) -> None:
        self.target = target
        self.max_streams = max_streams
        self._slots = threading.BoundedSemaphore(max_streams) if max_streams > 0 else None

    @property
    def enabled(self) -> bool:
        return self._slots is not None

    def take(self, client: socket.socket, request: bytes, error_answer: ErrorAnswer) -> bool:
        """Take over `client` (its caller closes its own handle; the relay keeps a duplicate) and
        relay `request`; False when every slot is taken (the caller serves the request as before)."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            return False
        try:
            own = socket.socket(fileno=os.dup(client.fileno()))
        except OSError:
            self._slots.release()
            return False
        thread = threading.Thread(
            target=self._relay, args=(own, request, error_answer), name="event-stream-relay", daemon=True
        )
        thread.start()
        return True

    def _relay(self, client: socket.socket, request: bytes, error_answer: ErrorAnswer) -> None:
        upstream: socket.socket | None = None
        try:
            client.setblocking(True)
            client.settimeout(WRITE_TIMEOUT)
            try:
                upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                logger.warning(
                    "event stream process not answering",
                    extra={"target": f"{self.target[0]}:{self.target[1]}", "error": str(exc)},
                )
                with contextlib.suppress(OSError):
                    client.sendall(
                        error_answer(
                            503,
                            "The event stream is not available right now (its process does not answer); "
                            "retry in a few seconds.",
                        )
                    )
                return
            upstream.settimeout(WRITE_TIMEOUT)
            upstream.sendall(request)
            _pump(client, upstream)
        except OSError:
            pass  # either side went away: the subscriber reconnects with Last-Event-ID
        except Exception:  # a relay thread must never die loudly in a worker
            logger.exception("event stream relay failed")
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            assert self._slots is not None
            self._slots.release()


def _pump(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes. The stream sends a comment at least every 15 s,
    so an idle wait here always ends; a peer that takes nothing times the write out."""
    with selectors.DefaultSelector() as poller:
        poller.register(client, selectors.EVENT_READ, upstream)
        poller.register(upstream, selectors.EVENT_READ, client)
        while True:
            for key, _ in poller.select():
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(_CHUNK)
                if not data:
                    return
                key.data.sendall(data)
