"""Collecting every problem of a definition before refusing it, each at its exact field path.

Paths read like the JSON they point into: ``rules[2].when.all[0].op``, ``targets.allow_variant``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from flagsvc_sdk.engine.errors import ValidationFailed
from flagsvc_sdk.engine.limits import (
    KEY_PATTERN,
    MAX_ATTRIBUTE_CHARS,
    MAX_JSON_DEPTH,
    MAX_REPORTED_PROBLEMS,
    MAX_SAFE_INTEGER,
)
from flagsvc_sdk.engine.values import is_utf8


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


def number_problem(value: int | float) -> str | None:
    """Why ``value`` is not a number that every SDK reads the same, or ``None``.

    JSON numbers become IEEE 754 doubles in most languages: an integer past 2**53 - 1 would be
    served rounded there, and JSON has no Infinity or NaN (Python reads ``1e999`` as infinity).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
        return (
            f"integers must lie within -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER} (2**53 - 1): "
            "SDKs in other languages read numbers as doubles and would round this one"
        )
    if math.isfinite(value):
        return None
    return "must be a finite number: JSON has no Infinity or NaN (1e999 is too large)"


def string_problem(text: str) -> str | None:
    """Why ``text`` is not text that can be stored and sent anywhere, or ``None``.

    NUL (U+0000) cannot be stored in a PostgreSQL text or jsonb column; a lone surrogate
    (``"\\ud800"`` in JSON) is not Unicode text at all and cannot be written as UTF-8.
    """
    if "\x00" in text:
        return "must not contain the NUL character (U+0000)"
    if not is_utf8(text):
        return "must be valid Unicode text: it contains a lone surrogate (e.g. \\ud800)"
    return None


def portable_json_problems(
    value: Any, path: str, problems: Problems, *, root: str = "", max_depth: int = MAX_JSON_DEPTH
) -> bool:
    """Add a problem for each part of ``value`` that not every JSON reader would read the same.

    Numbers must pass ``number_problem``, strings and field names ``string_problem``, and objects
    and arrays nest at most ``max_depth`` levels (the first container too deep is reported and not
    walked into). ``root`` names ``value`` itself when ``path`` is empty. The walk is a loop, never
    a recursion, so any depth is safe; it reports at most ``MAX_REPORTED_PROBLEMS`` problems.
    Returns whether ``value`` nests too deep.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    found: list[tuple[str, str]] = []
    too_deep = False
    while stack:
        current, where, depth = stack.pop()
        if isinstance(current, str):
            problem = string_problem(current)
        elif isinstance(current, int | float):
            problem = number_problem(current)
        elif current is None:
            problem = None
        elif not isinstance(current, Mapping | list):
            problem = f"is not a JSON value: {type(current).__name__}"
        elif depth > max_depth:
            problem = f"nests deeper than {max_depth} levels of objects and arrays"
            too_deep = True
        elif isinstance(current, list):
            problem = None
            for index in range(len(current) - 1, -1, -1):
                stack.append((current[index], item(where, index), depth + 1))
        else:
            problem = None
            children: list[tuple[Any, str, int]] = []
            for name, child in current.items():
                if not isinstance(name, str):
                    found.append((where, f"field name {name!r}: field names must be strings"))
                elif (name_problem := string_problem(name)) is not None:
                    found.append((where, f"field name {name!r}: {name_problem}"))
                else:
                    children.append((child, at(where, name), depth + 1))
            stack.extend(reversed(children))
        if problem is not None:
            found.append((where, problem))
    for where, message in found[:MAX_REPORTED_PROBLEMS]:
        problems.add(where or root, message)
    return too_deep
