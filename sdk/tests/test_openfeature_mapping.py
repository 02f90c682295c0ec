"""rules.md "Reasons mapped to OpenFeature": one mapping for the OFREP routes and providers."""

from __future__ import annotations

from typing import Any

import pytest
from builders import flag, ruleset, user

from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine.openfeature import is_static, openfeature_metadata, openfeature_reason

SPLIT = [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}]


@pytest.mark.parametrize(
    ("doc", "reason", "expected"),
    [
        (flag(state="off"), "OFF", "DISABLED"),
        (flag(targets={"allow": ["u-1"]}), "TARGET_MATCH", "TARGETING_MATCH"),
        (flag(targets={"deny": ["u-1"]}), "TARGET_MATCH", "TARGETING_MATCH"),
        (
            flag(
                rules=[
                    {
                        "id": "r",
                        "when": {"attr": "id", "op": "eq", "value": "u-1"},
                        "serve": {"variant": "on"},
                    }
                ]
            ),
            "RULE_MATCH",
            "TARGETING_MATCH",
        ),
        (flag(variants=SPLIT), "PERCENTAGE_ROLLOUT", "SPLIT"),
        (flag(default={"variant": "on"}), "DEFAULT", "STATIC"),
        (
            flag(
                default={"variant": "on"},
                rules=[
                    {
                        "id": "r",
                        "when": {"attr": "id", "op": "eq", "value": "u-9"},
                        "serve": {"variant": "off"},
                    }
                ],
            ),
            "DEFAULT",
            "DEFAULT",
        ),
        (flag(default={"variant": "on"}, targets={"allow": ["u-9"]}), "DEFAULT", "DEFAULT"),
        (flag(bucket_by="account_id", variants=SPLIT), "ERROR", "ERROR"),
    ],
)
def test_openfeature_reason__as_rules_md_maps_it(
    doc: dict[str, Any], reason: str, expected: str
) -> None:
    rules = ruleset(doc)
    result = evaluate(rules, "checkout", user("u-1"))
    assert result.reason == reason
    assert openfeature_reason(result.reason, rules.flags["checkout"]) == expected


def test_openfeature_reason__prerequisite_failed__default_and_never_static() -> None:
    rules = ruleset(
        flag("base", state="off"),
        flag(default={"variant": "on"}, prerequisites=[{"flag": "base", "variants": ["on"]}]),
    )
    result = evaluate(rules, "checkout", user("u-1"))
    assert result.reason == "PREREQUISITE_FAILED"
    assert openfeature_reason(result.reason, rules.flags["checkout"]) == "DEFAULT"
    assert not is_static(rules.flags["checkout"]), "its answer follows another flag's"


def test_openfeature_reason__unknown_reason__unknown() -> None:
    assert openfeature_reason("SOMETHING_NEW", None) == "UNKNOWN"


def test_openfeature_metadata__primitives_only_with_our_reason() -> None:
    rules = ruleset(flag(variants=SPLIT), version=4)
    result = evaluate(rules, "checkout", user("u-1"))
    metadata = openfeature_metadata(
        result.reason, result.rule_id, {**result.details, "nested": {"x": 1}}
    )
    assert metadata == {
        "reason": "PERCENTAGE_ROLLOUT",
        "flag_version": 4,
        "bucket": result.details["bucket"],
    }
