"""Prerequisites (rules.md "Flag fields" and step 3 of evaluation): on write and at evaluation."""

from __future__ import annotations

from typing import Any

import pytest
from builders import TENANT, evaluate_both, flag, ruleset, user

from flagsvc_sdk.engine import (
    COMPILED,
    InvalidDefinition,
    PrerequisiteCycle,
    ValidationFailed,
    compile_ruleset,
    evaluate,
    evaluate_many,
    validate_flag,
)


def needs(*keys: str) -> list[dict[str, Any]]:
    return [{"flag": key, "variants": ["on"]} for key in keys]


def test_prerequisite_met__evaluation_continues() -> None:
    rules = ruleset(flag("payments"), flag("checkout", prerequisites=needs("payments")))
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason) == ("on", "PERCENTAGE_ROLLOUT")


def test_prerequisite_not_met__off_variant_naming_the_prerequisite() -> None:
    rules = ruleset(
        flag("payments", state="off"), flag("checkout", prerequisites=needs("payments"))
    )
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason) == ("off", "PREREQUISITE_FAILED")
    assert result.details["prerequisite"] == "payments"
    assert "bucket" in result.details


def test_prerequisite__checked_before_targets() -> None:
    rules = ruleset(
        flag("payments", state="off"),
        flag("checkout", prerequisites=needs("payments"), targets={"allow": ["u-1"]}),
    )
    assert evaluate_both(rules, "checkout", user("u-1")).reason == "PREREQUISITE_FAILED"


def test_prerequisite__any_listed_variant_satisfies() -> None:
    rules = ruleset(
        flag("payments", state="off"),
        flag("checkout", prerequisites=[{"flag": "payments", "variants": ["on", "off"]}]),
    )
    assert evaluate_both(rules, "checkout", user("u-1")).reason == "PERCENTAGE_ROLLOUT"


def test_deep_chain_failure__reports_the_direct_prerequisite() -> None:
    rules = ruleset(
        flag("d", state="off"),
        flag("c", prerequisites=needs("d")),
        flag("b", prerequisites=needs("c")),
        flag("a", prerequisites=needs("b")),
    )
    result = evaluate_both(rules, "a", user("u-1"))
    assert (result.reason, result.details["prerequisite"]) == ("PREREQUISITE_FAILED", "b")
    assert evaluate_both(rules, "c", user("u-1")).details["prerequisite"] == "d"


def test_second_prerequisite_failing__is_the_one_reported() -> None:
    rules = ruleset(
        flag("x"),
        flag("y", state="off"),
        flag("checkout", prerequisites=needs("x", "y")),
    )
    assert evaluate_both(rules, "checkout", user("u-1")).details["prerequisite"] == "y"


def test_prerequisite_missing_at_evaluation__fails() -> None:
    stored = {**validate_flag(flag("checkout", prerequisites=needs("archived"))), "version": 1}
    rules = compile_ruleset(tenant=TENANT, version="1", flags=[stored], segments=[])
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.reason, result.details["prerequisite"]) == ("PREREQUISITE_FAILED", "archived")


def test_prerequisite_depends_on_the_user() -> None:
    rules = ruleset(
        flag(
            "payments",
            rules=[
                {
                    "id": "nl",
                    "when": {"attr": "country", "op": "eq", "value": "NL"},
                    "serve": {"variant": "on"},
                }
            ],
            default={"variant": "off"},
        ),
        flag("checkout", prerequisites=needs("payments"), default={"variant": "on"}),
    )
    assert evaluate_both(rules, "checkout", user("u-1", country="NL")).reason == "DEFAULT"
    assert (
        evaluate_both(rules, "checkout", user("u-1", country="BE")).reason == "PREREQUISITE_FAILED"
    )


counts_reads = pytest.mark.skipif(
    COMPILED,
    reason="compiled code reads dicts through the C API, past ReadCounter.get; the pure-Python "
    "run of this suite (make test-sqlite) checks memoisation",
)


class ReadCounter(dict[str, Any]):
    """User attributes that count how often each is read: each flag below reads its own once."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}

    def get(self, name: str, default: Any = None) -> Any:
        self.reads[name] = self.reads.get(name, 0) + 1
        return super().get(name, default)


def counted(key: str, **fields: Any) -> dict[str, Any]:
    """A flag whose one rule reads the attribute ``key`` (absent, so the rule never matches)."""
    rule = {"id": "probe", "when": {"attr": key, "op": "exists"}, "serve": {"variant": "on"}}
    return flag(key, rules=[rule], **fields)


def counting_user() -> tuple[dict[str, Any], ReadCounter]:
    attributes = ReadCounter()
    return {"id": "u-1", "attributes": attributes}, attributes


@counts_reads
def test_prerequisites__memoised_within_one_evaluation() -> None:
    """A diamond a -> (b, c) -> d evaluates d once."""
    rules = ruleset(
        counted("d"),
        counted("b", prerequisites=needs("d")),
        counted("c", prerequisites=needs("d")),
        counted("a", prerequisites=needs("b", "c")),
    )
    probe, attributes = counting_user()
    assert evaluate(rules, "a", probe).reason == "PERCENTAGE_ROLLOUT"
    assert attributes.reads == {"a": 1, "b": 1, "c": 1, "d": 1}


@counts_reads
def test_evaluate_many__shares_prerequisite_results() -> None:
    rules = ruleset(
        counted("base"),
        counted("one", prerequisites=needs("base")),
        counted("two", prerequisites=needs("base")),
    )
    probe, attributes = counting_user()
    results = evaluate_many(rules, probe)
    assert attributes.reads == {"base": 1, "one": 1, "two": 1}
    assert {key: result.reason for key, result in results.items()} == {
        "base": "PERCENTAGE_ROLLOUT",
        "one": "PERCENTAGE_ROLLOUT",
        "two": "PERCENTAGE_ROLLOUT",
    }


def test_cycle_in_stored_definitions__fails_instead_of_recursing() -> None:
    """Cycles are refused on write; a ruleset that has one anyway must still answer."""
    stored = [
        {**validate_flag(flag("a", prerequisites=needs("b"))), "version": 1},
        {**validate_flag(flag("b", prerequisites=needs("a"))), "version": 1},
    ]
    rules = compile_ruleset(tenant=TENANT, version="1", flags=stored, segments=[])
    assert evaluate_both(rules, "a", user("u-1")).details["prerequisite"] == "b"
    assert evaluate_many(rules, user("u-1"))["b"].reason == "PREREQUISITE_FAILED"


def test_chain_deeper_than_cap_in_stored_definitions__fails() -> None:
    docs = [flag("f0")] + [flag(f"f{n}", prerequisites=needs(f"f{n - 1}")) for n in range(1, 11)]
    stored = [{**validate_flag(doc), "version": 1} for doc in docs]
    rules = compile_ruleset(tenant=TENANT, version="1", flags=stored, segments=[])
    assert evaluate_both(rules, "f8", user("u-1")).reason == "PERCENTAGE_ROLLOUT"
    assert evaluate_both(rules, "f10", user("u-1")).reason == "PREREQUISITE_FAILED"


def live(*docs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {doc["key"]: validate_flag(doc) for doc in docs}


def test_validate_flag__refuses_a_cycle_naming_it() -> None:
    others = live(flag("b", prerequisites=needs("c")), flag("c", prerequisites=needs("a")))
    with pytest.raises(PrerequisiteCycle) as raised:
        validate_flag(flag("a", prerequisites=needs("b")), live_flags=others)
    assert raised.value.cycle == ["a", "b", "c", "a"]


def test_validate_flag__two_flag_cycle() -> None:
    others = live(flag("b", prerequisites=needs("a")))
    with pytest.raises(PrerequisiteCycle) as raised:
        validate_flag(flag("a", prerequisites=needs("b")), live_flags=others)
    assert raised.value.cycle == ["a", "b", "a"]
    assert "a -> b -> a" in str(raised.value)


def test_validate_flag__acyclic_diamond_is_accepted() -> None:
    others = live(
        flag("d"), flag("b", prerequisites=needs("d")), flag("c", prerequisites=needs("d"))
    )
    validate_flag(flag("a", prerequisites=needs("b", "c")), live_flags=others)


@pytest.mark.parametrize("live_flags", [None, {}, {"b": flag("b")}])
def test_validate_flag__own_prerequisite__is_a_cycle_of_one(
    live_flags: dict[str, Any] | None,
) -> None:
    """rules.md: cycles are refused on write (409 prerequisite_cycle); `a -> a` is the shortest."""
    with pytest.raises(PrerequisiteCycle) as raised:
        validate_flag(flag("a", prerequisites=needs("a")), live_flags=live_flags)
    assert raised.value.cycle == ["a", "a"]


def test_compile_ruleset__stored_flag_naming_itself__invalid_definition() -> None:
    stored = {**validate_flag(flag("a")), "prerequisites": needs("a"), "version": 1}
    with pytest.raises(InvalidDefinition) as raised:
        compile_ruleset(tenant=TENANT, version="1", flags=[stored], segments=[])
    assert (raised.value.kind, raised.value.key) == ("flag", "a")
    assert "a -> a" in raised.value.fields["prerequisites"][0]


def test_validate_flag__prerequisite_must_be_live_and_name_its_variants() -> None:
    others = live(flag("payments"))
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(
            flag(
                "checkout",
                prerequisites=[
                    {"flag": "payments", "variants": ["on", "maybe"]},
                    {"flag": "archived", "variants": ["on"]},
                ],
            ),
            live_flags=others,
        )
    assert set(raised.value.fields) == {"prerequisites[0].variants[1]", "prerequisites[1].flag"}
    assert "unknown or archived" in raised.value.fields["prerequisites[1].flag"][0]


def test_validate_flag__prerequisite_shape_errors() -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(
            flag(
                prerequisites=[
                    {"flag": "x", "variants": []},
                    {"flag": "x", "variants": ["on"]},
                    {"flag": "y", "variants": ["no way"], "extra": 1},
                    "z",
                ]
            )
        )
    assert set(raised.value.fields) == {
        "prerequisites[0].variants",
        "prerequisites[1].flag",
        "prerequisites[2].variants[0]",
        "prerequisites[2].extra",
        "prerequisites[3]",
    }


def chain(length: int) -> dict[str, dict[str, Any]]:
    """Live flags p0 <- p1 <- ... <- p{length}: p{n} needs p{n-1}."""
    docs = [flag("p0")] + [
        flag(f"p{n}", prerequisites=needs(f"p{n - 1}")) for n in range(1, length + 1)
    ]
    return live(*docs)


def test_validate_flag__chain_of_eight_is_accepted() -> None:
    validate_flag(flag("top", prerequisites=needs("p7")), live_flags=chain(7))


def test_validate_flag__chain_deeper_than_eight_is_refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(flag("top", prerequisites=needs("p8")), live_flags=chain(8))
    assert list(raised.value.fields) == ["prerequisites"]
    assert "9 deep" in raised.value.fields["prerequisites"][0]


def test_validate_flag__chain_depth_counts_flags_that_depend_on_this_one() -> None:
    """p8 -> ... -> p1 -> p0 exists; giving p0 a prerequisite makes p8's chain 9 deep."""
    others = chain(8)
    del others["p0"]
    others["base"] = validate_flag(flag("base"))
    with pytest.raises(ValidationFailed):
        validate_flag(flag("p0", prerequisites=needs("base")), live_flags=others)
