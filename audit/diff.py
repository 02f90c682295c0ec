"""The `diff` of an audit entry: each changed field path → `{"from", "to"}` (api.md, Audit)."""

from __future__ import annotations

from typing import Any

BOOKKEEPING_FIELDS = frozenset({"version", "updated_at", "created_at"})


def document_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    old = before or {}
    new = after or {}
    for field in sorted(set(old) | set(new)):
        if field in BOOKKEEPING_FIELDS:
            continue
        _walk(field, old.get(field), new.get(field), changes)
    return changes


def _walk(path: str, old: Any, new: Any, changes: dict[str, dict[str, Any]]) -> None:
    if old == new and type(old) is type(new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(f"{path}.{key}", old.get(key), new.get(key), changes)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(f"{path}[{index}]", a, b, changes)
        return
    changes[path] = {"from": old, "to": new}
