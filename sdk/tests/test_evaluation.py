"""rules.md "Order of evaluation and reasons": every reason, targets, rules, defaults, bucket_by."""

from __future__ import annotations

from typing import Any

import pytest
from builders import TENANT, evaluate_both, flag, leaf, ruleset, user

from flagsvc_sdk.engine import (
    InvalidDefinition,
    bucket,
    compile_ruleset,
    evaluate,
    evaluate_many,
    validate_flag,
)

STRING_VARIANTS = [
    {"key": "control", "value": "old", "weight": 50},
    {"key": "treatment", "value": "new", "weight": 50},
]


def string_flag(**fields: Any) -> dict[str, Any]:
    return flag(type="string", variants=STRING_VARIANTS, off_variant="control", **fields)


def test_evaluate__off_serves_off_variant_with_bucket_and_version() -> None:
    rules = ruleset(flag(state="off", targets={"allow": ["u-1"]}), version=7)
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.value, result.reason, result.rule_id) == (
        "off",
        False,
        "OFF",
        None,
    )
    assert result.details == {"bucket": bucket(TENANT, "checkout", "u-1"), "flag_version": 7}


def test_evaluate__deny_wins_over_allow() -> None:
    rules = ruleset(flag(targets={"allow": ["u-1"], "deny": ["u-1"]}))
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason) == ("off", "TARGET_MATCH")
    assert result.details["target"] == "deny"


def test_evaluate__allow_serves_allow_variant() -> None:
    rules = ruleset(
        string_flag(
            targets={"allow": ["u-1"], "allow_variant": "treatment"}, default={"variant": "control"}
        )
    )
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.value, result.reason) == ("treatment", "new", "TARGET_MATCH")
    assert result.details["target"] == "allow"
    assert "bucket" in result.details


def test_evaluate__targets_come_before_rules() -> None:
    rules = ruleset(
        flag(
            targets={"deny": ["u-1"]},
            rules=[{"id": "everyone", "when": {"all": []}, "serve": {"variant": "on"}}],
        )
    )
    assert evaluate_both(rules, "checkout", user("u-1")).reason == "TARGET_MATCH"
    assert evaluate_both(rules, "checkout", user("u-2")).reason == "RULE_MATCH"


def test_evaluate__first_matching_rule_wins() -> None:
    rules = ruleset(
        string_flag(
            rules=[
                {
                    "id": "dutch",
                    "when": leaf("country", "eq", "NL"),
                    "serve": {"variant": "treatment"},
                },
                {"id": "europe", "when": leaf("eu", "eq", True), "serve": {"variant": "control"}},
            ],
            default={"variant": "control"},
        )
    )
    result = evaluate_both(rules, "checkout", user("u-1", country="NL", eu=True))
    assert (result.variant, result.reason, result.rule_id) == ("treatment", "RULE_MATCH", "dutch")
    result = evaluate_both(rules, "checkout", user("u-1", country="BE", eu=True))
    assert (result.variant, result.rule_id) == ("control", "europe")


def test_evaluate__rule_with_distribution_is_rule_match_picked_by_bucket() -> None:
    serve = {
        "distribution": [{"variant": "control", "weight": 1}, {"variant": "treatment", "weight": 1}]
    }
    rules = ruleset(string_flag(rules=[{"id": "split", "when": {"all": []}, "serve": serve}]))
    for user_id in (f"u-{n}" for n in range(40)):
        result = evaluate_both(rules, "checkout", user(user_id))
        expected = "control" if bucket(TENANT, "checkout", user_id) < 0.5 else "treatment"
        assert (result.variant, result.reason, result.rule_id) == (expected, "RULE_MATCH", "split")


def test_evaluate__default_single_variant_is_default() -> None:
    rules = ruleset(string_flag(default={"variant": "treatment"}))
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason, result.rule_id) == ("treatment", "DEFAULT", None)
    assert result.details["bucket"] == bucket(TENANT, "checkout", "u-1")


def test_evaluate__default_distribution_is_percentage_rollout() -> None:
    serve = {
        "distribution": [
            {"variant": "control", "weight": 25},
            {"variant": "treatment", "weight": 75},
        ]
    }
    rules = ruleset(string_flag(default=serve))
    for user_id in (f"u-{n}" for n in range(40)):
        result = evaluate_both(rules, "checkout", user(user_id))
        expected = "control" if bucket(TENANT, "checkout", user_id) < 0.25 else "treatment"
        assert (result.variant, result.reason) == (expected, "PERCENTAGE_ROLLOUT")


def test_evaluate__null_default_splits_by_variant_weights() -> None:
    variants = [
        {"key": "a", "value": "A", "weight": 0},
        {"key": "b", "value": "B", "weight": 3},
        {"key": "c", "value": "C", "weight": 1},
    ]
    rules = ruleset(flag(type="string", variants=variants, off_variant="a", default=None))
    seen = set()
    for user_id in (f"u-{n}" for n in range(60)):
        result = evaluate_both(rules, "checkout", user(user_id))
        expected = "b" if bucket(TENANT, "checkout", user_id) < 0.75 else "c"
        assert (result.variant, result.reason) == (expected, "PERCENTAGE_ROLLOUT")
        seen.add(result.variant)
    assert seen == {"b", "c"}


def test_evaluate__boolean_flag_without_variants_serves_on_to_everyone() -> None:
    rules = ruleset(flag())
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.value, result.reason) == ("on", True, "PERCENTAGE_ROLLOUT")


def test_evaluate__unknown_flag_is_error_flag_not_found() -> None:
    result = evaluate(ruleset(flag()), "nope", user("u-1"))
    assert (result.variant, result.value, result.reason, result.rule_id) == (
        None,
        None,
        "ERROR",
        None,
    )
    assert result.error_code == "FLAG_NOT_FOUND"
    assert result.to_dict() == {
        "flag_key": "nope",
        "variant": None,
        "value": None,
        "reason": "ERROR",
        "rule_id": None,
        "details": {},
        "error_code": "FLAG_NOT_FOUND",
    }
    assert evaluate(ruleset(flag()), "nope", user("u-1"), trace=True).error_code == "FLAG_NOT_FOUND"


def test_to_dict__api_shape_without_error_code_or_trace() -> None:
    rules = ruleset(
        flag(rules=[{"id": "beta", "when": {"all": []}, "serve": {"variant": "on"}}]), version=3
    )
    assert evaluate(rules, "checkout", user("u-42")).to_dict() == {
        "flag_key": "checkout",
        "variant": "on",
        "value": True,
        "reason": "RULE_MATCH",
        "rule_id": "beta",
        "details": {"bucket": bucket(TENANT, "checkout", "u-42"), "flag_version": 3},
    }


def test_evaluate__json_value_is_a_fresh_copy_each_time() -> None:
    variants = [{"key": "a", "value": {"limits": [1, 2]}}, {"key": "b", "value": []}]
    rules = ruleset(flag(type="json", variants=variants, off_variant="b", default={"variant": "a"}))
    first = evaluate(rules, "checkout", user("u-1"))
    first.value["limits"].append(3)
    first.to_dict()["value"]["limits"].append(4)
    assert evaluate(rules, "checkout", user("u-1")).value == {"limits": [1, 2]}


BY_ACCOUNT: dict[str, Any] = {
    "bucket_by": "account_id",
    "rules": [
        {
            "id": "split",
            "when": leaf("country", "eq", "NL"),
            "serve": {
                "distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]
            },
        },
        {"id": "dutch-fallback", "when": leaf("country", "eq", "NL"), "serve": {"variant": "off"}},
    ],
}


def test_bucket_by__attribute_value_is_hashed_instead_of_id() -> None:
    rules = ruleset(flag(**BY_ACCOUNT))
    first = evaluate_both(rules, "checkout", user("u-1", account_id="acc-9", country="NL"))
    second = evaluate_both(rules, "checkout", user("u-2", account_id="acc-9", country="NL"))
    assert (
        first.details["bucket"] == second.details["bucket"] == bucket(TENANT, "checkout", "acc-9")
    )
    assert first.variant == second.variant
    assert first.rule_id == "split"


def test_bucket_by__integer_attribute_is_hashed_in_decimal() -> None:
    rules = ruleset(flag(bucket_by="org.number"))
    result = evaluate_both(rules, "checkout", user("u-1", org={"number": 1234}))
    assert result.details["bucket"] == bucket(TENANT, "checkout", "1234")


@pytest.mark.parametrize("account", [None, 1.5, True, ["a"], {"id": "a"}, "x\ud800"])
def test_bucket_by__missing_or_unusable_value_is_not_bucketable(account: Any) -> None:
    attributes = {"country": "NL"} if account is None else {"country": "NL", "account_id": account}
    rules = ruleset(flag(**BY_ACCOUNT))
    result = evaluate_both(rules, "checkout", user("u-1", **attributes))
    assert (result.variant, result.reason, result.rule_id) == (
        "off",
        "RULE_MATCH",
        "dutch-fallback",
    )
    assert "bucket" not in result.details


def test_not_bucketable__default_split_serves_off_variant_with_error() -> None:
    rules = ruleset(flag(bucket_by="account_id"), version=2)
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason, result.error_code) == ("off", "ERROR", "NOT_BUCKETABLE")
    assert result.details == {"flag_version": 2}
    assert result.to_dict()["error_code"] == "NOT_BUCKETABLE"


def test_not_bucketable__single_variant_default_still_serves() -> None:
    rules = ruleset(flag(bucket_by="account_id", default={"variant": "on"}))
    result = evaluate_both(rules, "checkout", user("u-1"))
    assert (result.variant, result.reason, result.error_code) == ("on", "DEFAULT", None)


def test_evaluate__user_id_that_is_not_valid_unicode_is_not_bucketed() -> None:
    """mmh3 crashes the process on a lone surrogate; the engine never hands it one."""
    result = evaluate(ruleset(flag()), "checkout", {"id": "u-\ud800", "attributes": {}})
    assert (result.reason, result.error_code) == ("ERROR", "NOT_BUCKETABLE")


def test_evaluate_many__all_flags_and_unknown_keys() -> None:
    rules = ruleset(flag("a"), flag("b", state="off"))
    everything = evaluate_many(rules, user("u-1"))
    assert {key: result.reason for key, result in everything.items()} == {
        "a": "PERCENTAGE_ROLLOUT",
        "b": "OFF",
    }
    some = evaluate_many(rules, user("u-1"), ["b", "missing"])
    assert list(some) == ["b", "missing"]
    assert some["missing"].error_code == "FLAG_NOT_FOUND"


def test_with_flag__dry_runs_without_changing_the_original() -> None:
    rules = ruleset(flag(default={"variant": "off"}))
    draft = {**validate_flag(flag(default={"variant": "on"})), "version": 2}
    dry = rules.with_flag(draft)
    assert evaluate(dry, "checkout", user("u-1")).variant == "on"
    assert evaluate(dry, "checkout", user("u-1")).details["flag_version"] == 2
    assert evaluate(rules, "checkout", user("u-1")).variant == "off"
    new_key = rules.with_flag({**validate_flag(flag("other")), "version": 1})
    assert set(new_key.flags) == {"checkout", "other"}
    assert set(rules.flags) == {"checkout"}


def test_with_flag__refuses_an_invalid_definition() -> None:
    with pytest.raises(InvalidDefinition) as raised:
        ruleset(flag()).with_flag({**flag(rules=[{"id": "r"}]), "version": 1})
    assert raised.value.key == "checkout"
    assert "rules[0].when" in raised.value.fields


def test_compile_ruleset__refuses_invalid_definitions_naming_them() -> None:
    with pytest.raises(InvalidDefinition) as raised:
        compile_ruleset(
            tenant=TENANT,
            version="1",
            flags=[{**flag("broken", state="maybe"), "version": 1}],
            segments=[],
        )
    assert (raised.value.kind, raised.value.key) == ("flag", "broken")
    assert raised.value.fields["state"]
    assert "broken" in str(raised.value)


def test_compile_ruleset__refuses_unknown_segment_missing_version_and_duplicates() -> None:
    uses_segment = {
        **flag(rules=[{"id": "r", "when": {"segment": "gone"}, "serve": {"variant": "on"}}])
    }
    with pytest.raises(InvalidDefinition) as raised:
        compile_ruleset(
            tenant=TENANT, version="1", flags=[{**uses_segment, "version": 1}], segments=[]
        )
    assert "rules[0].when.segment" in raised.value.fields
    with pytest.raises(InvalidDefinition) as raised:
        compile_ruleset(tenant=TENANT, version="1", flags=[flag()], segments=[])
    assert "version" in raised.value.fields
    with pytest.raises(InvalidDefinition):
        compile_ruleset(
            tenant=TENANT,
            version="1",
            flags=[{**flag(), "version": 1}, {**flag(), "version": 2}],
            segments=[],
        )
    with pytest.raises(InvalidDefinition) as raised:
        compile_ruleset(
            tenant=TENANT, version="1", flags=[], segments=[{"key": "s", "when": {"all": 1}}]
        )
    assert raised.value.kind == "segment"


def test_compile_ruleset__leaves_out_archived_flags_and_read_only_fields() -> None:
    stored = {
        **validate_flag(flag()),
        "version": 4,
        "created_at": "2026-01-01T00:00:00Z",
        "archived_at": None,
    }
    archived = {**validate_flag(flag("old")), "version": 1, "archived_at": "2026-01-02T00:00:00Z"}
    rules = compile_ruleset(tenant=TENANT, version="9", flags=[stored, archived], segments=[])
    assert set(rules.flags) == {"checkout"}
    assert (rules.tenant, rules.version) == (TENANT, "9")
    assert evaluate(rules, "old", user("u-1")).error_code == "FLAG_NOT_FOUND"


def test_compile_ruleset__precomputes_prefix_and_thresholds() -> None:
    serve = {"distribution": [{"variant": "on", "weight": 50}, {"variant": "off", "weight": 30}]}
    compiled = ruleset(flag(default=serve)).flags["checkout"]
    assert compiled.prefix == "acme:checkout:"
    assert compiled.default_shares == (50.0 / 80.0, 1.0)


def test_bucket__rules_md_example_hash_input() -> None:
    import mmh3

    assert bucket("acme", "checkout-redesign", "u-42") == (
        mmh3.hash("acme:checkout-redesign:u-42", seed=0, signed=False) / 2**32
    )
    with pytest.raises(ValueError, match="surrogate"):
        bucket("acme", "checkout", "\ud800")
