"""What the gunicorn worker knows of a request head it reads before gunicorn parses it: enough to
answer an error with the caller's request id and one log line (flagsvc.http_worker), and to tell an
event-stream request to relay (flagsvc.stream_relay)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote_to_bytes

from django.utils.encoding import repercent_broken_unicode
from gunicorn import util

HEAD_END: Final = b"\r\n\r\n"
_TOKEN: Final = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NOT_FIELD_TEXT: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class RequestHead:
    """What the worker knows of a request it answers itself, read as a parser reads a head, in order.

    The request line counts when it is whole, well-formed and within `max_line`; the header fields
    only once the whole head has arrived, and only those before the first line a parser refuses (a
    name that is not a token, a NUL or other control character in a value): it never got past that
    line, so what follows is not known. Unknown is `None` (no headers): a request id is then made
    anew and the log line says null. gunicorn parses every request again; this is only for the
    answers written before or instead of that.
    """

    method: str | None = None
    path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-case names; a repeated field joined with commas, as WSGI does."""


def read_head(data: bytes | bytearray, max_line: int) -> RequestHead:
    line_end = data.find(b"\r\n")
    if line_end < 0 or 0 < max_line < line_end:
        return RequestHead()
    parts = bytes(data[:line_end]).split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        return RequestHead()
    method, path = parts[0].decode("ascii"), _path(parts[1])
    head_end = data.find(HEAD_END, line_end)
    if head_end < 0:
        return RequestHead(method, path)
    headers: dict[str, str] = {}
    for line in bytes(data[line_end + 2 : head_end]).split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or _NOT_FIELD_TEXT.search(value):
            break
        if b"_" in name:
            continue  # gunicorn drops such a field (`header_map = "drop"`): X_Request_ID is not X-Request-ID
        key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return RequestHead(method, path, headers)


def _path(target: bytes) -> str | None:
    """The path as Django's `request.path` has it: no query string, percent-decoded, UTF-8."""
    try:
        path = util.split_request_uri(target.decode("latin-1")).path
    except ValueError:
        return None
    return repercent_broken_unicode(unquote_to_bytes(path)).decode() or "/"
