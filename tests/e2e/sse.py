"""A Server-Sent Events client for the end-to-end tests and the benchmark: a thread reads the stream
and queues each frame with the time it arrived."""

from __future__ import annotations

import http.client
import queue
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Frame:
    fields: dict[str, str]
    comment: str | None
    arrived: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str | None:
        return self.fields.get("id")

    @property
    def event(self) -> str | None:
        return self.fields.get("event")

    @property
    def data(self) -> str | None:
        return self.fields.get("data")


class SseClient:
    def __init__(self, port: int, headers: dict[str, str], path: str = "/v1/events") -> None:
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", path, headers={"Accept": "text/event-stream", **headers})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())
        self._closed = False
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        comment: str | None = None
        try:
            while not self._closed:
                raw = self.response.fp.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\n")
                if line == "":
                    if fields or comment is not None:
                        self.frames.put(Frame(fields, comment))
                    fields, comment = {}, None
                elif line.startswith(":"):
                    comment = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, AttributeError):
            return

    def body(self) -> str:
        """The whole body of an answer that is not a stream (an error)."""
        return self.response.read().decode() if self.status != 200 else ""

    def next(self, timeout: float = 5.0, *, events_only: bool = True) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frames.get(timeout=max(0.0, deadline - time.monotonic()))
            if frame.comment is None or not events_only:
                return frame

    def events(self, count: int, timeout: float = 5.0) -> list[Frame]:
        return [self.next(timeout) for _ in range(count)]

    def none_within(self, seconds: float) -> bool:
        """No event (comments aside) arrives within `seconds`."""
        try:
            self.next(seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self._closed = True
        try:
            sock = self.connection.sock
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
