"""The users the admin evaluates: one typed as key/value rows, and a varied sample for "would change".

Rows (`_preview_attr_key`, `_preview_attr_type`, `_preview_attr_value`, repeated) replace typing JSON:
a value is text, a number or true/false, and a dotted name (`org.plan`) nests, as rules read it
(rules.md, Conditions).

The sample answers "how many users would this change move, and which way". 1,000 copies of one user
with different ids only measure the split; real users differ in the very attributes the rules test.
So each sample user gets its own id and, for every attribute the flag's rules (and the segments they
use) test, a value drawn from the values those conditions mention, values near them, values they do
not mention, or no value at all. The draw is seeded by the flag key: the same draft gives the same
count on every click.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import QueryDict

MAX_ROWS = 50
MAX_NAME_CHARS = 128
MAX_VALUE_CHARS = 1000
MAX_SAFE_INTEGER = 2**53 - 1
"""Larger whole numbers stay floats: JSON's portable integers end here (ADR 0009)."""


class RowsRefused(ValueError):
    """A row a person must fix; the message says which and how."""


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    value: str


def rows_from(data: QueryDict, prefix: str = "_preview_attr") -> list[Row]:
    names = data.getlist(f"{prefix}_key")
    types = data.getlist(f"{prefix}_type")
    values = data.getlist(f"{prefix}_value")
    if len(names) > MAX_ROWS:
        raise RowsRefused(f"At most {MAX_ROWS} attributes.")
    rows = []
    for index, name in enumerate(names):
        kind = types[index] if index < len(types) else "text"
        value = values[index] if index < len(values) else ""
        rows.append(Row(name=name.strip(), type=kind, value=value))
    return rows


def _typed(row: Row) -> Any:
    if row.type == "number":
        text = row.value.strip()
        try:
            number = float(text)
        except ValueError:
            raise RowsRefused(f"{row.name}: {row.value!r} is not a number (e.g. 42 or 2.5).") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise RowsRefused(f"{row.name}: {row.value!r} is not a finite number.")
        whole = (
            number.is_integer()
            and abs(number) <= MAX_SAFE_INTEGER
            and "." not in text
            and "e" not in text.lower()
        )
        return int(number) if whole else number
    if row.type == "boolean":
        if row.value not in ("true", "false"):
            raise RowsRefused(f"{row.name}: choose true or false.")
        return row.value == "true"
    if row.type != "text":
        raise RowsRefused(f"{row.name}: the type is text, number or true/false.")
    if len(row.value) > MAX_VALUE_CHARS:
        raise RowsRefused(f"{row.name}: at most {MAX_VALUE_CHARS} characters.")
    return row.value


def attributes_from_rows(rows: Iterable[Row]) -> dict[str, Any]:
    """The attributes object the rows describe; rows without a name are skipped (an empty new row)."""
    attributes: dict[str, Any] = {}
    for row in rows:
        if not row.name:
            continue
        if len(row.name) > MAX_NAME_CHARS:
            raise RowsRefused(f"Attribute names are at most {MAX_NAME_CHARS} characters.")
        parts = row.name.split(".")
        if "" in parts:
            raise RowsRefused(f"{row.name}: dotted names need a name between every dot, e.g. org.plan.")
        target = attributes
        for part in parts[:-1]:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise RowsRefused(f"{row.name}: {part} has a value already, so it cannot hold {row.name}.")
            target = child
        if parts[-1] in target:
            raise RowsRefused(f"{row.name} is in two rows; keep one.")
        target[parts[-1]] = _typed(row)
    return attributes


# --- the varied sample ------------------------------------------------------------------------------


def _leaves(condition: Any) -> Iterable[Mapping[str, Any]]:
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if "attr" in node and "op" in node:
                yield node
            for key in ("all", "any"):
                if isinstance(node.get(key), list):
                    stack.extend(node[key])
            if "not" in node:
                stack.append(node["not"])


def _near(op: str, value: Any) -> list[Any]:
    """Values that fall on both sides of one condition."""
    if op in ("in", "not_in") and isinstance(value, list):
        return list(value)
    if op in ("lt", "lte", "gt", "gte") and isinstance(value, int | float) and not isinstance(value, bool):
        return [value - 1, value, value + 1]
    if op == "between" and isinstance(value, list) and len(value) == 2:
        lo, hi = value
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)):
            return [lo - 1, lo, (lo + hi) / 2, hi]
    if op.startswith("semver_") and isinstance(value, str):
        parts = value.split("-")[0].split("+")[0].split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            major, minor, patch = (int(p) for p in parts)
            lower = f"{major}.{minor}.{patch - 1}" if patch else f"{major}.{max(minor - 1, 0)}.9"
            return [value, lower, f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}.0"]
        return [value]
    if op in ("before", "after"):
        moment = _moment(value)
        if moment is not None:
            return [(moment + timedelta(days=d)).isoformat().replace("+00:00", "Z") for d in (-30, -1, 1, 30)]
    if op == "starts_with" and isinstance(value, str):
        return [value + "x", "x" + value]
    if op == "ends_with" and isinstance(value, str):
        return ["someone" + value, value + "x"]
    if op == "contains" and isinstance(value, str):
        return ["a" + value + "b", "none"]
    if op == "regex":
        return []
    return [value] if value is not None else []


def _moment(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _other(values: list[Any]) -> list[Any]:
    """Values that none of the conditions mention, of the same kinds."""
    kinds = {type(v) for v in values}
    others: list[Any] = []
    if str in kinds:
        others += ["other", "zz-unlisted"]
    if int in kinds or float in kinds:
        numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        others += [min(numeric) - 100, max(numeric) + 100] if numeric else [0]
    if bool in kinds:
        others += [True, False]
    return others


def attribute_values(conditions: Iterable[Any]) -> dict[str, list[Any]]:
    """Each attribute the conditions test (not `id`) → the values to draw from (never empty)."""
    found: dict[str, list[Any]] = {}
    for condition in conditions:
        for leaf in _leaves(condition):
            name = str(leaf.get("attr"))
            if name == "id":
                continue
            values = found.setdefault(name, [])
            for value in _near(str(leaf.get("op")), leaf.get("value")):
                if value not in values and not isinstance(value, dict | list):
                    values.append(value)
    for values in found.values():
        for value in _other(values) or ["other"]:
            if value not in values:
                values.append(value)
    return found


def _place(attributes: dict[str, Any], name: str, value: Any) -> None:
    parts = name.split(".")
    target = attributes
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = value


def _remove(attributes: dict[str, Any], name: str) -> None:
    *parents, last = name.split(".")
    target: Any = attributes
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.pop(last, None)


def sample_users(
    *,
    size: int,
    seed: str,
    conditions: Iterable[Any],
    base: Mapping[str, Any],
    bucket_by: str = "id",
) -> tuple[list[dict[str, Any]], list[str]]:
    """`size` users with their own ids and varied attributes; and the names of the varied attributes.

    `base` (the typed attributes) fills in what the conditions do not test. A varied attribute is
    absent for about one user in eight (a missing attribute is false for most operators).
    """
    pool = attribute_values(conditions)
    rng = random.Random(seed)
    users = []
    for n in range(size):
        attributes: dict[str, Any] = copy.deepcopy(dict(base))
        for name, values in pool.items():
            if rng.random() < 0.125:
                _remove(attributes, name)
                continue
            _place(attributes, name, rng.choice(values))
        if bucket_by != "id":
            _place(attributes, bucket_by, f"{bucket_by}-{rng.randrange(size)}")
        users.append({"id": f"sample-{n}", "attributes": attributes})
    varied = sorted(pool) + ([bucket_by] if bucket_by != "id" and bucket_by not in pool else [])
    return users, varied
