"""validate_segment and validate_user: normalisation and exact field paths."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from builders import flag, leaf, ruleset

from flagsvc_sdk.engine import (
    PayloadTooLarge,
    ValidationFailed,
    evaluate,
    validate_segment,
    validate_user,
)
from flagsvc_sdk.local import LocalFlags


def test_validate_segment__normalises() -> None:
    assert validate_segment({"key": "beta"}) == {
        "key": "beta",
        "name": "",
        "description": "",
        "included": [],
        "excluded": [],
        "when": None,
    }
    when = leaf("plan", "in", ["pro"])
    assert validate_segment({"key": "beta", "included": ["u-1"], "when": when})["when"] == when


def test_validate_segment__errors_at_exact_paths() -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_segment(
            {
                "key": "bad key",
                "included": ["u-1", ""],
                "excluded": "u-2",
                "when": {"all": [{"segment": "other"}, leaf("x", "bad")]},
                "version": 1,
            }
        )
    assert set(raised.value.fields) == {
        "key",
        "included[1]",
        "excluded",
        "when.all[0].segment",
        "when.all[1].op",
        "version",
    }
    assert (
        "segments do not refer to other segments" in raised.value.fields["when.all[0].segment"][0]
    )


def test_validate_segment__too_large() -> None:
    with pytest.raises(PayloadTooLarge) as raised:
        validate_segment({"key": "big", "included": [f"user-{n:08d}" for n in range(20_000)]})
    assert raised.value.field == "segment"


@pytest.mark.parametrize(
    ("candidate", "path"),
    [
        ("u-1", "user"),
        (None, "user"),
        ({}, "user.id"),
        ({"id": ""}, "user.id"),
        ({"id": 42}, "user.id"),
        ({"id": "x" * 257}, "user.id"),
        ({"id": "u-\ud800"}, "user.id"),
        ({"id": "u-1", "attributes": ["country"]}, "user.attributes"),
        ({"id": "u-1", "traits": {}}, "user.traits"),
    ],
)
def test_validate_user__errors(candidate: Any, path: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_user(candidate)
    assert list(raised.value.fields) == [path]


def test_validate_user__defaults_attributes_and_copies_all_but_a_plain_user() -> None:
    attributes = {"country": "NL"}
    plain = {"id": "u-1", "attributes": attributes}
    # Already normalised: returned itself (every SDK call checks its user; a copy is most of the
    # cost and evaluation never changes the user).
    assert validate_user(plain) is plain
    from collections import OrderedDict

    other = validate_user(OrderedDict(plain))
    assert other == {"id": "u-1", "attributes": {"country": "NL"}}
    assert type(other) is dict
    assert other["attributes"] is not attributes
    assert validate_user({"id": "u-1"}) == {"id": "u-1", "attributes": {}}
    assert validate_user({"id": "u-1", "attributes": None}) == {"id": "u-1", "attributes": {}}


def test_user__attribute_names_of_other_types__are_never_read_and_refuse_nothing() -> None:
    """Only Python code can make a name that is not a string (JSON's are); no condition can name
    it, so it is left alone as any attribute no condition names, by the full check, the quick one
    and the typed calls alike."""
    rules = ruleset(
        flag(
            "checkout",
            rules=[{"id": "nl", "when": leaf("country", "eq", "NL"), "serve": {"variant": "on"}}],
            default={"variant": "off"},
        )
    )
    local = LocalFlags()
    local.ruleset = rules
    for names in ({1: "NL"}, {None: "x", (1, 2): "y"}, {True: "NL", 2.5: 1}):
        for country, served in (("NL", True), ("DE", False)):
            who = {"id": "u-1", "attributes": {**names, "country": country}}
            assert validate_user(who) is who
            assert validate_user(OrderedDict(who))["attributes"] == who["attributes"]
            result = evaluate(rules, "checkout", validate_user(who))
            assert (result.value, result.reason) == (served, "RULE_MATCH" if served else "DEFAULT")
            assert local.bool_value("checkout", who, not served) is served


def test_validate_segment__conditions_capped_at_1000() -> None:
    def segment(leaves: int) -> dict[str, Any]:
        return {"key": "s", "when": {"any": [leaf("n", "eq", n) for n in range(leaves)]}}

    validate_segment(segment(999))
    with pytest.raises(ValidationFailed) as raised:
        validate_segment(segment(1000))
    assert list(raised.value.fields) == ["when"]
