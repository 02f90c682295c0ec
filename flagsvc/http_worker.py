"""gunicorn's gthread worker, reading each request whole before a thread takes it (docs/operations.md,
"Slow clients and what goes in front").

gthread hands a connection to one of its few threads as soon as the first byte arrives; the thread
then blocks on the socket until the head and the body are in. Eight clients that announce
`Content-Length: 1000` and send ten bytes held every thread of both workers, and `/healthz` timed
out for as long as they stayed. Here the worker's event loop reads the request head and body
without blocking (as a buffering reverse proxy does) and only a complete request reaches a thread:

- a request not complete within `REQUEST_READ_TIMEOUT_SECONDS` of its first byte (head
  sent slowly, body sent slowly) is answered 408 and closed; a connection that sends nothing is
  closed after the same time, like an idle keep-alive connection;
- a body over `API_MAX_BODY_BYTES` (announced, or counted while chunks arrive) is answered 413
  at once and the rest of it is read and thrown away for a while (a "lingering close"): a client
  that writes its whole body before it reads (requests, httpx, urllib) then gets the 413 instead
  of a connection reset;
- a chunked body is taken in whole and handed on with a `Content-Length`, so Django reads it;
- the errors gunicorn answers itself (bad header 400, request line 414, headers 431, ...) are in
  the API's error shape with a request id, never gunicorn's HTML page;
- an event-stream request (`GET /v1/events` accepting `text/event-stream`) is relayed to the stream
  process instead of taking a request thread for hours (flagsvc.stream_relay).

Every answer written here keeps the contract the middleware keeps for the others (api.md,
Conventions and Operations): the caller's `X-Request-ID` passed through when the head was read far
enough to know it (`read_head`), and one `flagsvc.access` line for the request.
"""

from __future__ import annotations

import contextlib
import errno
import html
import io
import json
import re
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from gunicorn import util
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from flagsvc.request_head import HEAD_END as _HEAD_END
from flagsvc.request_head import read_head
from flagsvc.stream_relay import StreamRelay, asks_for_event_stream

if TYPE_CHECKING:
    from django.http import HttpRequest

LINGER_SECONDS: Final = 5.0
LINGER_MAX_BYTES: Final = 64 * 1024 * 1024
"""How long and how much of a refused body is read and discarded before the connection closes."""
_RECV_BYTES: Final = 256 * 1024
_CODES: Final = {
    400: "malformed_request",
    403: "forbidden",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    501: "not_implemented",
    503: "unavailable",
}
_HINTS: Final = {
    408: "The request did not arrive whole within {timeout:g} s: send the head and body without pauses.",
    414: "The request line (method, path and query) is too long: at most 8190 bytes.",
    431: "The request headers are too large: at most 100 fields of at most 8190 bytes each.",
}
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] (\d{3}) ([^\r]*)\r\n")
_MAX_LENGTH_DIGITS: Final = 18
"""A Content-Length longer than this (leading zeros aside) is over any body cap: refused unread."""
_EVENTS_REQUEST: Final = b"GET /v1/events"
"""How an event-stream request starts: only those are parsed for the relay (flagsvc.stream_relay)."""
_HTML_MESSAGE: Final = re.compile(rb"</h1>\s*(.*?)\s*</body>", re.S)


class Framing:
    """Whether the bytes of one request read so far hold all of it (head, then body).

    `feed()` answers `INCOMPLETE`, `COMPLETE`, `TOO_LARGE` (body over `limit` bytes), or `PARSE` when
    the head is malformed or unusual: gunicorn's own parser then reads it and answers the error.
    Only what decides where the request ends is read here; gunicorn parses everything again.
    """

    INCOMPLETE: Final = "incomplete"
    COMPLETE: Final = "complete"
    TOO_LARGE: Final = "too_large"
    PARSE: Final = "parse"

    def __init__(self, limit: int, max_head_bytes: int) -> None:
        self.limit = limit
        self.max_head_bytes = max_head_bytes
        self.head_end: int | None = None
        self.content_length = 0
        self.chunked = False
        self.expects_continue = False
        self.announced: int | None = None
        self._chunk_at = 0
        self._decoded = 0

    def feed(self, data: bytearray) -> str:
        if self.head_end is None:
            end = data.find(_HEAD_END)
            if end < 0:
                return self.PARSE if len(data) > self.max_head_bytes else self.INCOMPLETE
            self.head_end = end + len(_HEAD_END)
            verdict = self._read_head(bytes(data[: self.head_end]))
            if verdict is not None:
                return verdict
            self._chunk_at = self.head_end
        if self.chunked:
            return self._scan_chunks(data)
        return self.COMPLETE if len(data) - self.head_end >= self.content_length else self.INCOMPLETE

    def _read_head(self, head: bytes) -> str | None:
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in head.split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                continue
            name = name.strip().lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings.extend(coding.strip().lower() for coding in value.split(b","))
            elif name == b"expect" and value.strip().lower() == b"100-continue":
                self.expects_continue = True
        if codings:
            if lengths or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
                return self.PARSE
            self.chunked = True
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return self.PARSE
        digits = lengths[0].lstrip(b"0") if lengths else b""
        if len(digits) > _MAX_LENGTH_DIGITS:  # int() refuses past 4,300 digits; no body is that big
            return self.TOO_LARGE
        self.content_length = int(digits or b"0")
        if self.content_length > self.limit:
            self.announced = self.content_length
            return self.TOO_LARGE
        return None

    def _scan_chunks(self, data: bytearray) -> str:
        """Walk the chunks that have arrived; the body is complete after the last chunk's trailers."""
        while True:
            line_end = data.find(b"\r\n", self._chunk_at)
            if line_end < 0:
                return self.PARSE if len(data) - self._chunk_at > 8192 else self.INCOMPLETE
            size_text = bytes(data[self._chunk_at : line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                return self.PARSE
            if size < 0:
                return self.PARSE
            if size == 0:
                found = data.find(_HEAD_END, line_end)
                return self.COMPLETE if found >= 0 else self.INCOMPLETE
            if self._decoded + size > self.limit:
                self.announced = self._decoded + size
                return self.TOO_LARGE
            chunk_end = line_end + 2 + size + 2
            if len(data) < chunk_end:
                return self.INCOMPLETE
            self._decoded += size
            self._chunk_at = chunk_end


@dataclass
class _Reading:
    """A connection whose request is still arriving."""

    framing: Framing
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    sent_continue: bool = False
    started: float = field(default_factory=time.perf_counter)
    """When the worker began to read the request: its `duration_ms` counts from here."""


@dataclass(frozen=True)
class _Ready:
    """A request read whole, waiting for a thread."""

    data: bytes
    sent_continue: bool
    started: float


class _Serving(threading.local):
    """The request a thread is serving, for `handle_error`, which gunicorn gives only the socket."""

    data: bytes = b""
    started: float = 0.0


@dataclass
class _Lingering:
    """A connection answered early, whose refused body is read and thrown away."""

    deadline: float
    drained: int = 0


@contextlib.contextmanager
def _request(data: bytes | bytearray, peer: Any, max_line: int) -> Iterator[tuple[HttpRequest, str]]:
    """A request the worker answers itself, as the middleware sees one: `META`, method and path
    for its log line (`flagsvc.middleware.log_request`), its id by the middleware's rule
    (`incoming_request_id`, the one home of that rule), and the request context set meanwhile (no
    tenant or actor: nothing was authenticated), so that every line logged inside carries the id."""
    from django.http import HttpRequest

    from flagsvc.middleware import incoming_request_id
    from kernel import context

    head = read_head(data, max_line)
    request = HttpRequest()
    request.method = head.method
    request.path = head.path  # type: ignore[assignment]  # None when not read: the log line says null
    request.META = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in head.headers.items()}
    request.META["REMOTE_ADDR"] = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    request_id = incoming_request_id(request)
    tokens = (
        context.current_request_id.set(request_id),
        context.current_tenant.set(None),
        context.current_actor.set(None),
    )
    try:
        yield request, request_id
    finally:
        context.current_request_id.reset(tokens[0])
        context.current_tenant.reset(tokens[1])
        context.current_actor.reset(tokens[2])


def error_response(
    status: int,
    message: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
    *,
    request_id: str,
    retry_after: int | None = None,
) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape, closing the connection."""
    from kernel.errors import error_body

    body = json.dumps(
        error_body(
            _CODES.get(status, "internal_error" if status >= 500 else "malformed_request"),
            message,
            details,
            request_id=request_id,
        )
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Error')}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        + (f"Retry-After: {retry_after}\r\n" if retry_after is not None else "")
        + f"X-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body


_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _ErrorCapture:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = bytearray()

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


class BufferingThreadWorker(ThreadWorker):
    """gthread, with each request read whole by the event loop before a thread serves it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: dict[Any, _Reading] = {}
        self._ready: dict[Any, _Ready] = {}
        self._serving = _Serving()
        self._lingering: dict[Any, _Lingering] = {}
        self._relay = StreamRelay(("", 0), 0)  # set up in load_wsgi, with the settings
        self._body_limit = 0
        self._read_timeout = 10.0

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from django.conf import settings

        self._body_limit = int(settings.API_MAX_BODY_BYTES)
        self._read_timeout = float(settings.REQUEST_READ_TIMEOUT_SECONDS)
        own_ports = {sock.getsockname()[1] for sock in self.sockets if sock.family != socket.AF_UNIX}
        relay_to_self = int(settings.EVENTS_PORT) in own_ports
        self._relay = StreamRelay(
            (str(settings.EVENTS_HOST), int(settings.EVENTS_PORT)),
            0 if relay_to_self else int(settings.EVENTS_RELAY_MAX),
        )

    # --- the event loop: reading requests -----------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        from gunicorn.workers.gthread import TConn

        self._start_reading(TConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: read it here too.

        The socket stays registered (only the callback changes: no `epoll_ctl`), and it is
        non-blocking already (`finish_request` made it so), so this costs no system call.
        """
        self.keepalived_conns.remove(conn)
        self._start_reading(conn, registered=True)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """A request served, and the client already sent (part of) the next one: read that in
        the loop too, rather than let gunicorn give the connection straight back to a thread,
        which would wait on a half-sent request."""
        served = not fs.cancelled() and fs.exception() is None and fs.result()
        if served and served is not _DEFER and self.alive and conn.parser is not None:
            pipelined = conn.parser.unreader.take_buffered()
            if pipelined:
                self._start_reading(conn, pipelined)
                return
        super().finish_request(conn, fs)

    def _start_reading(self, conn: Any, pipelined: bytes = b"", *, registered: bool = False) -> None:
        """Read `conn`'s next request in the loop. A new connection is non-blocking already
        (gunicorn's `TConn`), as is a kept-alive one (`registered`: still in the poller); one a
        thread just served (`pipelined`) is not."""
        if pipelined:
            conn.sock.setblocking(False)
        max_head = self.cfg.limit_request_fields * (self.cfg.limit_request_field_size + 2) + 8192
        reading = _Reading(Framing(self._body_limit, max_head), time.monotonic() + self._read_timeout)
        self._reading[conn] = reading
        callback = partial(self._on_request_bytes, conn)
        if registered:
            self.poller.modify(conn.sock, selectors.EVENT_READ, callback)
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, callback)
        # A kept-alive connection is readable already, and a new one often is: read now rather
        # than after one more turn of the loop.
        self._on_request_bytes(conn, conn.sock, pipelined)

    def _on_request_bytes(self, conn: Any, client: socket.socket, pipelined: bytes = b"") -> None:
        try:
            self._read_request_bytes(conn, client, pipelined)
        except Exception:  # the event loop must outlive any one connection
            self.log.exception("error while reading a request")
            self._stop_reading(conn)
            self._close(conn)

    def _read_request_bytes(self, conn: Any, client: socket.socket, pipelined: bytes) -> None:
        reading = self._reading.get(conn)
        if reading is None:
            return
        try:
            data = pipelined or client.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._stop_reading(conn)
            self._close(conn)
            return
        reading.data += data
        verdict = reading.framing.feed(reading.data)
        if verdict == Framing.INCOMPLETE:
            if reading.framing.expects_continue and not reading.sent_continue:
                reading.sent_continue = True
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self._stop_reading(conn)
        if verdict == Framing.TOO_LARGE:
            self._refuse_too_large(conn, reading)
            return
        if (
            self._relay.enabled
            and reading.data.startswith(_EVENTS_REQUEST)
            and self._relay_stream(conn, reading)
        ):
            return
        conn.data_ready = True
        self._ready[conn] = _Ready(bytes(reading.data), reading.sent_continue, reading.started)
        self.enqueue_req(conn)

    def _relay_stream(self, conn: Any, reading: _Reading) -> bool:
        """Hand an event-stream request to the stream process (flagsvc.stream_relay), if it is one."""
        head = read_head(reading.data, self.cfg.limit_request_line)
        if not asks_for_event_stream(head.method, head.path, head.headers.get("accept")):
            return False
        if not self._relay.take(
            conn.sock, bytes(reading.data), partial(self._relay_error, reading, conn.client)
        ):
            return False
        self._close(conn)  # the relay holds its own handle of the socket
        return True

    def _relay_error(self, reading: _Reading, peer: Any, status: int, message: str) -> bytes:
        """The relay's answer when the stream process does not answer, with the request's id and line."""
        from flagsvc.middleware import log_request

        with _request(reading.data, peer, self.cfg.limit_request_line) as (request, request_id):
            log_request(request, status, reading.started)
        return error_response(status, message, request_id=request_id, retry_after=2)

    def _stop_reading(self, conn: Any) -> None:
        self._reading.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _refuse_too_large(self, conn: Any, reading: _Reading) -> None:
        from kernel.errors import body_too_large_message

        framing = reading.framing
        length = None if framing.chunked else framing.announced
        message = body_too_large_message(length, framing.limit)
        self._answer(conn, reading, 413, message, details={"limit_bytes": framing.limit})
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self._lingering[conn] = _Lingering(time.monotonic() + LINGER_SECONDS)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_lingering_bytes, conn))

    def _on_lingering_bytes(self, conn: Any, client: socket.socket) -> None:
        lingering = self._lingering[conn]
        try:
            data = client.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        lingering.drained += len(data)
        if not data or lingering.drained > LINGER_MAX_BYTES:
            self._end_lingering(conn)

    def _end_lingering(self, conn: Any) -> None:
        self._lingering.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self._close(conn)

    def _answer(
        self, conn: Any, reading: _Reading, status: int, message: str, details: dict[str, Any] | None = None
    ) -> None:
        """Answer a request the event loop refuses, with its id and its one log line."""
        from flagsvc.middleware import log_request

        with _request(reading.data, conn.client, self.cfg.limit_request_line) as (request, request_id):
            log_request(request, status, reading.started)
        self._send(conn, error_response(status, message, details=details, request_id=request_id))

    def _send(self, conn: Any, data: bytes) -> None:
        """Best effort on a non-blocking socket: a short answer fits the send buffer."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Besides gunicorn's own: time out requests still arriving and refused bodies still
        draining (the loop runs this at least once a second)."""
        super().murder_pending()
        now = time.monotonic()
        for conn, reading in list(self._reading.items()):
            if reading.deadline <= now:
                self._stop_reading(conn)
                if reading.data:
                    self._answer(conn, reading, 408, _HINTS[408].format(timeout=self._read_timeout))
                self._close(conn)
        for conn, lingering in list(self._lingering.items()):
            if lingering.deadline <= now:
                self._end_lingering(conn)

    # --- a thread: serving a complete request ---------------------------------------------------

    def handle(self, conn: Any) -> Any:
        ready = self._ready.pop(conn, None)
        conn.sent_continue = False
        conn.read_whole = ready is not None
        self._serving.data, self._serving.started = b"", time.perf_counter()
        if ready is not None:
            conn.sent_continue = ready.sent_continue
            self._serving.data, self._serving.started = ready.data, ready.started
            conn.init()  # a new connection gets its parser (and turns blocking: gunicorn's handle does too)
            conn.parser.unreader.unread(ready.data)
        try:
            return super().handle(conn)
        finally:
            self._serving.data = b""  # not held (up to API_MAX_BODY_BYTES) while the thread waits

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        """Keep the connection when gunicorn would: a request the loop read whole has its unread body
        in memory, so it is drained whole. gunicorn drains at most 64 KiB (against a client still
        sending) and then closes a connection it has already answered with keep-alive: the next
        request on it went unanswered after a view that reads no body was sent a larger one."""
        if keepalive and getattr(conn, "read_whole", False):
            return bool(conn.parser.finish_body())
        return bool(super()._keepalive_after(conn, keepalive))

    def handle_request(self, req: Any, conn: Any) -> Any:
        if getattr(conn, "sent_continue", False):
            req._expected_100_continue = False  # the event loop already said "100 Continue"
        if any(name == "TRANSFER-ENCODING" for name, _ in req.headers):
            _with_content_length(req)
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's own answer to a request it cannot serve, in the API's error shape.

        gunicorn logs why (a `gunicorn.error` line, with the request id here); the request's own
        line is the access line, as for every other request.
        """
        from flagsvc.middleware import log_request

        capture = _ErrorCapture()
        with _request(self._serving.data, addr, self.cfg.limit_request_line) as (request, request_id):
            super().handle_error(req, capture, addr, exc)
            status_line = _STATUS_LINE.match(capture.data)
            status = int(status_line[1]) if status_line else 500
            log_request(request, status, self._serving.started)
        reason = status_line[2].decode("latin-1") if status_line else ""
        detail_match = _HTML_MESSAGE.search(capture.data)
        detail = html.unescape(detail_match[1].decode("utf-8", "replace")) if detail_match else ""
        message = _HINTS.get(status, reason + ".").format(timeout=self._read_timeout)
        if detail:
            message += f" ({detail[:200]})"
        try:
            util.write_nonblock(client, error_response(status, message, reason, request_id=request_id))
        except Exception:
            self.log.debug("Failed to send error message.")


def _with_content_length(req: Any) -> None:
    """Read a chunked body (already in memory) and hand it on with a `Content-Length`.

    Django reads `CONTENT_LENGTH` bytes of a body and none without it: a chunked body was dropped.
    """
    body = req.body.read()
    req.body = io.BytesIO(body)
    req.headers = [
        (name, value) for name, value in req.headers if name not in ("TRANSFER-ENCODING", "CONTENT-LENGTH")
    ]
    req.headers.append(("CONTENT-LENGTH", str(len(body))))
