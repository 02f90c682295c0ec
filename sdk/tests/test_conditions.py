"""Condition forms of rules.md "Conditions": all/any/not, segments, ``id`` and dotted names."""

from __future__ import annotations

from typing import Any

import pytest
from builders import evaluate_both, flag, leaf, matches, ruleset, user

NL = leaf("country", "eq", "NL")
PRO = leaf("plan", "eq", "pro")
ADULT = leaf("age", "gte", 18)


def test_all__empty_is_true_and_any__empty_is_false() -> None:
    assert matches({"all": []}) is True
    assert matches({"any": []}) is False


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"country": "NL", "plan": "pro", "age": 30}, True),
        ({"country": "NL", "plan": "pro", "age": 10}, False),
        ({"country": "NL", "plan": "free", "age": 30}, False),
        ({"country": "DE", "plan": "pro", "age": 30}, False),
    ],
)
def test_all__needs_every_condition(attributes: dict[str, Any], expected: bool) -> None:
    assert matches({"all": [NL, PRO, ADULT]}, user("u-1", **attributes)) is expected
    assert matches({"all": [NL, {"all": [PRO, ADULT]}]}, user("u-1", **attributes)) is expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"country": "DE", "plan": "free", "age": 30}, True),
        ({"country": "NL", "plan": "free", "age": 10}, True),
        ({"country": "DE", "plan": "pro", "age": 10}, True),
        ({"country": "DE", "plan": "free", "age": 10}, False),
        ({}, False),
    ],
)
def test_any__needs_one_condition(attributes: dict[str, Any], expected: bool) -> None:
    assert matches({"any": [NL, PRO, ADULT]}, user("u-1", **attributes)) is expected
    assert matches({"any": [NL, {"any": [PRO, ADULT]}]}, user("u-1", **attributes)) is expected


def test_single_child_all_and_any__equal_the_child() -> None:
    assert matches({"all": [NL]}, user("u-1", country="NL")) is True
    assert matches({"any": [NL]}, user("u-1", country="DE")) is False


def test_not__negates_including_a_missing_attribute() -> None:
    assert matches({"not": NL}, user("u-1", country="DE")) is True
    assert matches({"not": NL}, user("u-1", country="NL")) is False
    assert matches({"not": NL}, user("u-1")) is True
    assert matches({"not": {"not": NL}}, user("u-1", country="NL")) is True


def test_attr_id__is_the_users_id_not_an_attribute() -> None:
    condition = leaf("id", "eq", "u-42")
    assert matches(condition, user("u-42")) is True
    assert matches(condition, user("u-1", id="u-42")) is False


def test_dotted_name__walks_nested_objects() -> None:
    condition = leaf("org.plan", "eq", "pro")
    assert matches(condition, user("u-1", org={"plan": "pro"})) is True
    assert (
        matches(leaf("org.billing.tier", "eq", 2), user("u-1", org={"billing": {"tier": 2}}))
        is True
    )
    assert matches(condition, user("u-1", org={"plan": "free"})) is False


@pytest.mark.parametrize("org", [None, "pro", ["plan"], {"other": 1}])
def test_dotted_name__through_a_missing_or_non_object_value_is_missing(org: Any) -> None:
    who = user("u-1", org=org)
    assert matches(leaf("org.plan", "exists"), who) is False
    assert matches(leaf("org.plan", "not_exists"), who) is True


def test_dotted_name__does_not_read_a_flat_key_with_a_dot() -> None:
    assert matches(leaf("org.plan", "eq", "pro"), user("u-1", **{"org.plan": "pro"})) is False


BETA = {
    "key": "beta",
    "included": ["u-in", "u-both"],
    "excluded": ["u-out", "u-both"],
    "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
}


def in_segment(segment: dict[str, Any], who: dict[str, Any]) -> bool:
    rules = ruleset(
        flag(
            rules=[{"id": "seg", "when": {"segment": segment["key"]}, "serve": {"variant": "on"}}],
            default={"variant": "off"},
        ),
        segments=[segment],
    )
    return evaluate_both(rules, "checkout", who).reason == "RULE_MATCH"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (user("u-in"), True),
        (user("u-both", plan="free"), True),
        (user("u-out", plan="pro"), False),
        (user("u-other", plan="pro"), True),
        (user("u-other", plan="free"), False),
        (user("u-other"), False),
    ],
)
def test_segment__included_else_when_unless_excluded(who: dict[str, Any], expected: bool) -> None:
    assert in_segment(BETA, who) is expected


def test_segment__without_when_matches_only_included_ids() -> None:
    segment = {"key": "vip", "included": ["u-1"]}
    assert in_segment(segment, user("u-1")) is True
    assert in_segment(segment, user("u-2", plan="pro")) is False


def test_segment__inside_combinators() -> None:
    condition = {"all": [{"segment": "beta"}, {"not": leaf("country", "eq", "US")}]}
    rules = ruleset(
        flag(
            rules=[{"id": "r", "when": condition, "serve": {"variant": "on"}}],
            default={"variant": "off"},
        ),
        segments=[BETA],
    )
    assert evaluate_both(rules, "checkout", user("u-in", country="NL")).reason == "RULE_MATCH"
    assert evaluate_both(rules, "checkout", user("u-in", country="US")).reason == "DEFAULT"


def test_deeply_nested_condition__at_the_depth_cap_evaluates() -> None:
    condition: dict[str, Any] = NL
    for _ in range(15):
        condition = {"all": [condition]}
    assert matches(condition, user("u-1", country="NL")) is True
