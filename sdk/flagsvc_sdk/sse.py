"""Server-Sent Events framing (the WHATWG "event stream" format), as ``GET /v1/events`` sends it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    id: str | None
    event: str
    data: str


class EventParser:
    """Feed it lines (without their line ending); it returns an ``Event`` at each blank line that
    ends a frame with data or an id. Comments (``: keep-alive``) return nothing."""

    __slots__ = ("_data", "_event", "_id", "_seen")

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self._seen = False

    def feed(self, line: str) -> Event | None:
        if line == "":
            if not self._seen:
                return None
            frame = Event(self._id, self._event or "message", "\n".join(self._data))
            self._reset()
            return frame
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        else:
            return None
        self._seen = True
        return None
