"""A real HTTP receiver on loopback for the webhook tests: a threaded server that answers from a script.

`Receiver(script)` answers its n-th request with `script[n]` (the last entry repeats): an int status, or
`HANG` (read the request, then answer nothing until the test ends), or `(status, headers, body)`.
Every request is recorded with its headers, its body and how many requests were in flight with it.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    path: str
    at: float


@dataclass
class Receiver:
    script: list[Any]
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight_per_id: dict[str, int] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open_by_id: dict[str, int] = field(default_factory=dict)
    port: int = 0
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8")
        message_id = handler.headers.get("webhook-id", "")
        with self._lock:
            index = len(self.requests)
            self._open_by_id[message_id] = self._open_by_id.get(message_id, 0) + 1
            self.max_in_flight_per_id[message_id] = max(
                self.max_in_flight_per_id.get(message_id, 0), self._open_by_id[message_id]
            )
        with self.arrived:
            self.requests.append(
                Received(
                    headers=dict(handler.headers.items()), body=body, path=handler.path, at=time.monotonic()
                )
            )
            self.arrived.notify_all()
        try:
            step = self.script[min(index, len(self.script) - 1)]
            if step == HANG:
                self.released.wait(60)
                return
            if self.delay:
                time.sleep(self.delay)
            status, headers, payload = step if isinstance(step, tuple) else (step, {}, b"ok")
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            with self._lock:
                self._open_by_id[message_id] -= 1


@contextmanager
def running_receiver(
    script: list[Any], delay: float = 0.0, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    receiver = Receiver(script=script, delay=delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:  # HTTPS: the handshake happens on accept, with the certificate given
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        receiver.scheme = "https"
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
