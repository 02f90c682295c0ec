"""The admin's words for the rules language (rules.md): one home for the operator labels, the value
kind each operator takes and the date format, used by the server-side "in words" views and handed
to the browser builders as JSON (`vocabulary_json`) so the two can never disagree."""

from __future__ import annotations

import json
from typing import Final, Literal, TypedDict

from kernel.timefmt import ADMIN_DATETIME_FORMAT, format_datetime

__all__ = [
    "DATETIME_FORMAT",
    "GROUP_WORDS",
    "OPERATORS",
    "OPERATOR_WORDS",
    "Operator",
    "ValueKind",
    "format_datetime",
    "vocabulary_json",
]

ValueKind = Literal["scalar", "list", "string", "number", "range", "version", "datetime", "none"]


class Operator(TypedDict):
    op: str
    words: str
    value: ValueKind


OPERATORS: Final[tuple[Operator, ...]] = (
    {"op": "eq", "words": "is", "value": "scalar"},
    {"op": "neq", "words": "is not", "value": "scalar"},
    {"op": "in", "words": "is one of", "value": "list"},
    {"op": "not_in", "words": "is not one of", "value": "list"},
    {"op": "contains", "words": "contains", "value": "scalar"},
    {"op": "starts_with", "words": "starts with", "value": "string"},
    {"op": "ends_with", "words": "ends with", "value": "string"},
    {"op": "regex", "words": "matches the pattern", "value": "string"},
    {"op": "lt", "words": "is less than", "value": "number"},
    {"op": "lte", "words": "is at most", "value": "number"},
    {"op": "gt", "words": "is more than", "value": "number"},
    {"op": "gte", "words": "is at least", "value": "number"},
    {"op": "between", "words": "is between", "value": "range"},
    {"op": "semver_eq", "words": "version is", "value": "version"},
    {"op": "semver_lt", "words": "version is below", "value": "version"},
    {"op": "semver_lte", "words": "version is at most", "value": "version"},
    {"op": "semver_gt", "words": "version is above", "value": "version"},
    {"op": "semver_gte", "words": "version is at least", "value": "version"},
    {"op": "before", "words": "is before", "value": "datetime"},
    {"op": "after", "words": "is after", "value": "datetime"},
    {"op": "exists", "words": "is set", "value": "none"},
    {"op": "not_exists", "words": "is not set", "value": "none"},
)

OPERATOR_WORDS: Final[dict[str, str]] = {entry["op"]: entry["words"] for entry in OPERATORS}

GROUP_WORDS: Final[dict[str, str]] = {"all": "all of", "any": "any of", "not": "not"}

# One date format everywhere in the admin (2026-12-01 10:00 UTC): defined in the kernel, below every app
# whose admin shows dates (audit, tenancy, webhooks, segments), and named here with the other words.
DATETIME_FORMAT: Final = ADMIN_DATETIME_FORMAT


def vocabulary_json() -> str:
    """What the browser builders read (`json_script`): operators in order, groups, the date format."""
    return json.dumps({"operators": list(OPERATORS), "groups": GROUP_WORDS})
