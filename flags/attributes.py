"""A flag's attributes outside the engine document (`FLAG_ATTRIBUTE_FIELDS`): read from a caller's
document and validated here, the one home of their rules.

`kill_category` names the kill switch that turns the flag off (flags.killswitch): optional (null or
"" = none), a short slug like a tag, `^[a-z0-9][a-z0-9_-]{0,63}$`. It changes nothing that evaluation
serves, so the engine (and the SDK, and the snapshot) never sees it: like `tags` it is part of the flag
document in the API, unlike `tags` it is checked here rather than by `validate_flag`.

`lifecycle` ("temporary" | "permanent", default "temporary") and `remove_after` (an ISO date or null)
say whether a flag is expected to go and by when (api.md, Usage and lifecycle; usage.staleness reads
them to call a flag stale). Like `kill_category` they change nothing served.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flags.models import FLAG_ATTRIBUTE_FIELDS, FlagLifecycle
from kernel.errors import Invalid

KILL_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KILL_CATEGORY_RULE = "1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit"


def kill_category_problem(value: Any) -> str | None:
    if not isinstance(value, str) or KILL_CATEGORY.fullmatch(value) is None:
        shown = value if isinstance(value, str) and len(value) <= 80 else type(value).__name__
        return f"must be {KILL_CATEGORY_RULE}; got {shown!r}"
    return None


def check_kill_category(value: Any, field: str = "kill_category") -> str:
    """A kill category named by a caller (a flag's field, a route's path): 422 naming `field` if bad."""
    problem = kill_category_problem(value)
    if problem is not None:
        raise Invalid({field: [problem]})
    return str(value)


def check_lifecycle(value: Any) -> str:
    """`lifecycle`: "temporary" (the default; null means it) or "permanent"."""
    if value is None:
        return FlagLifecycle.TEMPORARY
    if value not in FlagLifecycle.values:
        shown = value if isinstance(value, str) and len(value) <= 80 else type(value).__name__
        raise Invalid({"lifecycle": [f"must be 'temporary' or 'permanent'; got {shown!r}"]})
    return str(value)


def check_remove_after(value: Any) -> str | None:
    """`remove_after`: an ISO date (`YYYY-MM-DD`) or null; normalised to `YYYY-MM-DD`."""
    if value is None or value == "":
        return None
    parsed = None
    if isinstance(value, str) and len(value) == 10:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        shown = value if isinstance(value, str) and len(value) <= 80 else type(value).__name__
        raise Invalid({"remove_after": [f"must be an ISO date (YYYY-MM-DD) or null; got {shown!r}"]})
    return parsed.isoformat()


def split_attributes(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document without the attributes, the attributes it names, validated and normalised)."""
    rest = {k: v for k, v in data.items() if k not in FLAG_ATTRIBUTE_FIELDS}
    attributes: dict[str, Any] = {}
    if "kill_category" in data:
        value = data["kill_category"]
        attributes["kill_category"] = None if value in (None, "") else check_kill_category(value)
    if "lifecycle" in data:
        attributes["lifecycle"] = check_lifecycle(data["lifecycle"])
    if "remove_after" in data:
        attributes["remove_after"] = check_remove_after(data["remove_after"])
    return rest, attributes
