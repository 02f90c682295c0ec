"""Depth, numbers and text of a definition: what every SDK reads the same way, or a 422 at its path.

A definition nests at most 64 levels (``MAX_JSON_DEPTH``); integers lie within +-(2**53 - 1),
floats are finite; strings and field names are Unicode text without NUL. Any depth is refused
without recursing, in validation and in compiling.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from builders import flag, leaf
from hypothesis import given
from hypothesis import strategies as st

from flagsvc_sdk.engine import (
    InvalidDefinition,
    ValidationFailed,
    compile_ruleset,
    validate_flag,
    validate_segment,
)
from flagsvc_sdk.engine.limits import MAX_CONDITION_DEPTH, MAX_JSON_DEPTH, MAX_SAFE_INTEGER
from flagsvc_sdk.engine.problems import Problems, portable_json_problems
from flagsvc_sdk.engine.values import is_portable_json


def problems(doc: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(doc)
    return raised.value.fields


def nested_not(levels: int) -> dict[str, Any]:
    condition: dict[str, Any] = leaf("country", "eq", "NL")
    for _ in range(levels - 1):
        condition = {"not": condition}
    return condition


def nested_lists(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_validate_flag__condition_nested_5000_levels__refused_at_the_depth_limit_path() -> None:
    doc = flag(rules=[{"id": "r", "when": nested_not(5_000), "serve": {"variant": "on"}}])
    # flag 1, rules 2, rule 3, when 4: the 65th level is the 61st `not`.
    path = "rules[0].when" + ".not" * (MAX_JSON_DEPTH - 3)
    fields = problems(doc)
    assert list(fields) == [path]
    assert f"deeper than {MAX_JSON_DEPTH} levels" in fields[path][0]


def test_validate_flag__condition_past_16_levels__refused_by_the_condition_cap() -> None:
    doc = flag(rules=[{"id": "r", "when": nested_not(40), "serve": {"variant": "on"}}])
    path = "rules[0].when" + ".not" * MAX_CONDITION_DEPTH
    assert problems(doc) == {
        path: [f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels; flatten them"]
    }


def test_validate_flag__json_value_nested_5000_levels__refused_at_its_path() -> None:
    doc = flag(type="json", variants=[{"key": "a", "value": nested_lists(5_000)}], off_variant="a")
    fields = problems(doc)
    assert list(fields) == ["variants[0].value" + "[0]" * (MAX_JSON_DEPTH - 3)]


def test_validate_flag__json_value_at_the_depth_limit__accepted() -> None:
    doc = flag(
        type="json",
        variants=[{"key": "a", "value": nested_lists(MAX_JSON_DEPTH - 3), "weight": 1}],
        off_variant="a",
    )
    assert validate_flag(doc)["variants"][0]["value"] == nested_lists(MAX_JSON_DEPTH - 3)
    too_deep = flag(
        type="json",
        variants=[{"key": "a", "value": nested_lists(MAX_JSON_DEPTH - 2)}],
        off_variant="a",
    )
    assert list(problems(too_deep)) == ["variants[0].value" + "[0]" * (MAX_JSON_DEPTH - 3)]


def test_compile__a_stored_definition_nested_5000_levels__invalid_not_a_recursion_error() -> None:
    doc = {
        **flag(rules=[{"id": "r", "when": nested_not(5_000), "serve": {"variant": "on"}}]),
        "version": 1,
    }
    with pytest.raises(InvalidDefinition):
        compile_ruleset(tenant="acme", version="1", flags=[doc], segments=[])


def test_validate_segment__when_nested_5000_levels__refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_segment({"key": "s", "when": nested_not(5_000)})
    assert list(raised.value.fields) == ["when" + ".not" * (MAX_JSON_DEPTH - 1)]


NUMBER_VARIANTS = [{"key": "low", "value": 1, "weight": 1}, {"key": "high", "value": 2}]


@pytest.mark.parametrize(
    "number",
    [MAX_SAFE_INTEGER + 1, -(MAX_SAFE_INTEGER + 1), 10**400, math.inf, -math.inf, math.nan],
)
def test_validate_flag__number_no_double_holds__refused_at_its_path(number: Any) -> None:
    doc = flag(
        type="number",
        variants=[NUMBER_VARIANTS[0], {"key": "high", "value": number}],
        off_variant="low",
    )
    assert "variants[1].value" in problems(doc)


@pytest.mark.parametrize(
    "number", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.7976931348623157e308, 5e-324]
)
def test_validate_flag__largest_portable_numbers__accepted(number: Any) -> None:
    doc = flag(
        type="number",
        variants=[NUMBER_VARIANTS[0], {"key": "high", "value": number}],
        off_variant="low",
    )
    assert validate_flag(doc)["variants"][1]["value"] == number


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (
            flag(
                variants=[
                    {"key": "on", "value": True, "weight": 10**400},
                    {"key": "off", "value": False},
                ]
            ),
            "variants[0].weight",
        ),
        (
            flag(rules=[{"id": "r", "when": leaf("n", "gt", 2**60), "serve": {"variant": "on"}}]),
            "rules[0].when.value",
        ),
        (
            flag(
                rules=[{"id": "r", "when": leaf("n", "in", [1, 2**60]), "serve": {"variant": "on"}}]
            ),
            "rules[0].when.value[1]",
        ),
        (
            flag(type="json", variants=[{"key": "a", "value": {"x": [math.inf]}}], off_variant="a"),
            "variants[0].value.x[0]",
        ),
        (flag(name="a\x00b"), "name"),
        (flag(tags=["ok", "\ud800"]), "tags[1]"),
        (flag(targets={"allow": ["\udfff"]}), "targets.allow[0]"),
        (
            flag(type="json", variants=[{"key": "a", "value": {"k\x00": 1}}], off_variant="a"),
            "variants[0].value",
        ),
    ],
)
def test_validate_flag__unportable_value_anywhere__refused_at_its_path(
    doc: dict[str, Any], path: str
) -> None:
    assert path in problems(doc)


def test_validate_flag__unportable_values__reported_with_the_other_problems() -> None:
    fields = problems(flag(state="maybe", name="\x00"))
    assert set(fields) == {"state", "name"}


def test_validate_flag__many_bad_values__at_most_20_problems_and_still_refused() -> None:
    doc = flag(tags=[f"t{n}\x00" for n in range(40)], type="json")
    fields = problems(doc)
    assert sum(len(messages) for path, messages in fields.items() if path.startswith("tags[")) <= 20


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.text(max_size=4)
)
json_documents = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(value=json_documents, levels=st.integers(min_value=0, max_value=6))
def test_is_portable_json__agrees_with_the_walk_that_names_the_problems(
    value: Any, levels: int
) -> None:
    """The quick check and the walk are two spellings of one rule: they never disagree."""
    found = Problems()
    portable_json_problems(value, "", found, root="value", max_depth=levels)
    assert is_portable_json(value, levels) == (not found)
