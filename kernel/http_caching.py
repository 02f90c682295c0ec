"""Conditional requests and content codings, read as RFC 9110 says (sections 13.1.2 and 12.5.3)."""

from __future__ import annotations

import gzip

_MAX_HEADER_CHARS = 4096
"""A longer `If-None-Match` or `Accept-Encoding` is not read (as if absent): no client sends one."""


def _weak_equal(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as the RFC wants for it) or is `*`."""
    if not header or len(header) > _MAX_HEADER_CHARS:
        return False
    if header.strip() == "*":
        return True
    return any(_weak_equal(candidate.strip(), etag) for candidate in header.split(","))


def accepts_gzip(header: str | None) -> bool:
    """Whether `Accept-Encoding` allows gzip: named (or `*`) with a weight above zero.

    `gzip;q=0` refuses it even when `*` would allow it; `x-gzip` is the same coding.
    """
    if not header or len(header) > _MAX_HEADER_CHARS:
        return False
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding.lower()] = weight
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


def gzip_bytes(body: bytes) -> bytes:
    """gzip with no timestamp in the header: the same body always gives the same bytes."""
    return gzip.compress(body, compresslevel=6, mtime=0)
