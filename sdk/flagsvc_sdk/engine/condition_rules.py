"""Checking and normalising a condition tree against the grammar of ``rules.md`` "Conditions"."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from flagsvc_sdk.engine.limits import MAX_CONDITION_DEPTH, MAX_CONDITIONS
from flagsvc_sdk.engine.operators import NO_VALUE_OPERATORS, OPERATORS, value_problems
from flagsvc_sdk.engine.problems import Problems, at, attribute_problem, item, key_problem

_COMBINATORS: Final = ("all", "any", "not", "segment")
_LEAF_FIELDS: Final = frozenset({"attr", "op", "value"})
_SHAPES: Final = (
    '{"attr": ..., "op": ..., "value": ...}, {"all": [...]}, {"any": [...]}, {"not": {...}} '
    'or {"segment": "<key>"}'
)


def check_condition(
    condition: Any,
    path: str,
    problems: Problems,
    *,
    segment_keys: Collection[str] | None,
    in_segment: bool = False,
    depth: int = 1,
) -> dict[str, Any] | None:
    """A normalised copy of ``condition``; every problem is added at its exact path.

    ``segment_keys`` (when given) are the keys a ``segment`` condition may name; ``in_segment``
    refuses segment references altogether ("Segments do not refer to other segments").
    """
    if not isinstance(condition, dict):
        problems.add(path, f"must be a condition object: {_SHAPES}")
        return None
    if depth > MAX_CONDITION_DEPTH:
        problems.add(
            path, f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels; flatten them"
        )
        return None
    present = [name for name in _COMBINATORS if name in condition]
    if not present:
        return _check_leaf(condition, path, problems)
    if len(condition) > 1:
        problems.add(path, f"a condition is exactly one of {_SHAPES}; got keys {sorted(condition)}")
        return None
    kind = present[0]
    body = condition[kind]
    body_path = at(path, kind)
    if kind == "segment":
        return _check_segment(body, body_path, problems, segment_keys, in_segment)
    if kind == "not":
        child = check_condition(
            body,
            body_path,
            problems,
            segment_keys=segment_keys,
            in_segment=in_segment,
            depth=depth + 1,
        )
        return None if child is None else {"not": child}
    if not isinstance(body, list):
        problems.add(body_path, f"{kind} needs a list of conditions")
        return None
    children = [
        check_condition(
            child,
            item(body_path, index),
            problems,
            segment_keys=segment_keys,
            in_segment=in_segment,
            depth=depth + 1,
        )
        for index, child in enumerate(body)
    ]
    return {kind: children}


def count_conditions(condition: dict[str, Any] | None) -> int:
    """How many condition objects a checked condition holds (itself included; ``None`` is 0)."""
    if condition is None:
        return 0
    if "not" in condition:
        return 1 + count_conditions(condition["not"])
    for kind in ("all", "any"):
        if kind in condition:
            return 1 + sum(count_conditions(child) for child in condition[kind])
    return 1


def conditions_problem(count: int) -> str | None:
    """What is wrong with a flag's or a segment's condition count over ``MAX_CONDITIONS``."""
    if count <= MAX_CONDITIONS:
        return None
    return (
        f"at most {MAX_CONDITIONS} conditions (each attr, all, any, not and segment counts); "
        f"got {count}: move long lists of values into one `in` condition or a segment"
    )


def _check_segment(
    key: Any, path: str, problems: Problems, segment_keys: Collection[str] | None, in_segment: bool
) -> dict[str, Any] | None:
    if in_segment:
        problems.add(path, "segments do not refer to other segments: inline the conditions instead")
        return None
    problem = key_problem(key, "a segment key")
    if problem is not None:
        problems.add(path, problem)
        return None
    if segment_keys is not None and key not in segment_keys:
        problems.add(path, f"unknown segment {key!r}: create it first or fix the key")
        return None
    return {"segment": key}


def _check_leaf(condition: dict[str, Any], path: str, problems: Problems) -> dict[str, Any] | None:
    if not condition:
        problems.add(path, f"empty condition: use one of {_SHAPES}")
        return None
    valid = True
    for name in condition:
        if name not in _LEAF_FIELDS:
            problems.add(at(path, name), f"unknown field {name!r} in a condition: use {_SHAPES}")
            valid = False
    attribute = condition.get("attr")
    problem = attribute_problem(attribute)
    if problem is not None:
        problems.add(at(path, "attr"), problem)
        valid = False
    op = condition.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        problems.add(
            at(path, "op"), f"unknown operator {op!r}; use one of {', '.join(sorted(OPERATORS))}"
        )
        return None
    value = condition.get("value")
    for suffix, message in value_problems(op, value, "value" in condition):
        problems.add(at(path, "value") + suffix, message)
        valid = False
    if not valid:
        return None
    if op in NO_VALUE_OPERATORS:
        return {"attr": attribute, "op": op}
    return {"attr": attribute, "op": op, "value": list(value) if isinstance(value, list) else value}
