from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a `Z` (api.md, Conventions)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")
