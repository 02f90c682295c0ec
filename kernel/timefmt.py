from __future__ import annotations

from datetime import UTC, datetime
from typing import Final


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a `Z` (api.md, Conventions)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


# One date format everywhere in the admin: 2026-12-01 10:00 UTC (ISO order, 24 h, zone named). The flag
# admin's vocabulary re-exports it; Django renders its own date columns with the same format through
# `flagsvc/formats` (FORMAT_MODULE_PATH), which translates it with `django_format` below.
ADMIN_DATETIME_FORMAT: Final = "%Y-%m-%d %H:%M %Z"

_DJANGO_EQUIVALENT: Final = {"%Y": "Y", "%m": "m", "%d": "d", "%H": "H", "%M": "i", "%S": "s", "%Z": "T"}


def format_datetime(value: datetime | None) -> str:
    """A moment as the admin shows it everywhere, in UTC; an empty string for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime(ADMIN_DATETIME_FORMAT)


def django_format(strftime_format: str) -> str:
    """The same format in the syntax of Django's `date` filter and format modules."""
    out, i = [], 0
    while i < len(strftime_format):
        pair = strftime_format[i : i + 2]
        if pair in _DJANGO_EQUIVALENT:
            out.append(_DJANGO_EQUIVALENT[pair])
            i += 2
            continue
        char = strftime_format[i]
        out.append("\\" + char if char.isalpha() else char)
        i += 1
    return "".join(out)
