"""Collecting every problem of a definition before refusing it, each at its exact field path.

Paths read like the JSON they point into: ``rules[2].when.all[0].op``, ``targets.allow_variant``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from flagsvc_sdk.engine.errors import ValidationFailed
from flagsvc_sdk.engine.limits import KEY_PATTERN, MAX_ATTRIBUTE_CHARS


def at(path: str, name: str) -> str:
    """The path of field ``name`` inside the object at ``path``."""
    return f"{path}.{name}" if path else name


def item(path: str, index: int) -> str:
    """The path of element ``index`` of the list at ``path``."""
    return f"{path}[{index}]"


class Problems:
    """Messages by field path; ``raise_if_any`` turns them into one ``ValidationFailed``."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def raise_if_any(self, subject: str) -> None:
        if self.fields:
            raise ValidationFailed(self.fields, subject=subject)


def unknown_fields(
    doc: Mapping[Any, Any], allowed: Collection[str], problems: Problems, path: str = ""
) -> None:
    """Add a problem for each field of ``doc`` (at ``path``) that is not in ``allowed``."""
    for name in doc:
        if name not in allowed:
            problems.add(
                at(path, str(name)),
                f"unknown field {name!r}; allowed: {', '.join(sorted(allowed))}",
            )


def key_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not a valid key (``api.md`` "Conventions"), or ``None``."""
    if isinstance(value, str) and KEY_PATTERN.fullmatch(value):
        return None
    return (
        f"{what} must be 1-128 characters: letters, digits, '.', '_' or '-', starting with a "
        f"letter or digit; got {value!r}"
    )


def attribute_problem(value: Any) -> str | None:
    """Why ``value`` cannot name a user attribute (``rules.md``: ``id`` or a dotted name), or
    ``None``.
    """
    if not isinstance(value, str) or not value:
        return 'must be a non-empty attribute name, e.g. "country" or "org.plan"'
    if len(value) > MAX_ATTRIBUTE_CHARS:
        return f"must be at most {MAX_ATTRIBUTE_CHARS} characters"
    if "" in value.split("."):
        return 'dotted names need a name between every dot, e.g. "org.plan"'
    return None


def text_problem(value: Any, limit: int) -> str | None:
    """Why ``value`` is not a string of at most ``limit`` characters, or ``None``."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > limit:
        return f"must be at most {limit} characters; got {len(value)}"
    return None


def id_list_problems(value: Any, path: str, problems: Problems, what: str) -> list[str]:
    """Check a list of user ids; returns the valid ids."""
    if not isinstance(value, list):
        problems.add(path, f"must be a list of {what}")
        return []
    ids: list[str] = []
    for index, entry in enumerate(value):
        if isinstance(entry, str) and entry:
            ids.append(entry)
        else:
            problems.add(item(path, index), f"must be a non-empty string ({what})")
    return ids
