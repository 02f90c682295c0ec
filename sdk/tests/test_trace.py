"""The preview trace (api.md "Evaluation"): every step and every condition tried."""

from __future__ import annotations

from typing import Any

from builders import TENANT, flag, leaf, ruleset, user

from flagsvc_sdk.engine import bucket, compile_ruleset, evaluate, validate_flag

SEGMENT = {
    "key": "beta",
    "included": ["u-vip"],
    "excluded": ["u-banned"],
    "when": leaf("plan", "eq", "pro"),
}


def traced(
    *flags: dict[str, Any], key: str = "checkout", who: dict[str, Any] | None = None
) -> list[Any]:
    result = evaluate(ruleset(*flags, segments=[SEGMENT]), key, who or user("u-1"), trace=True)
    assert result.trace is not None
    assert result.to_dict()["trace"] == result.trace
    return result.trace


def test_trace__untraced_result_has_none() -> None:
    result = evaluate(ruleset(flag()), "checkout", user("u-1"))
    assert result.trace is None
    assert "trace" not in result.to_dict()


def test_trace__off_step_stops_there() -> None:
    assert traced(flag(state="off")) == [{"step": "off", "outcome": True, "variant": "off"}]


def test_trace__rules_list_each_condition_with_actual_value() -> None:
    rules = [
        {
            "id": "dutch",
            "when": {"all": [leaf("country", "eq", "NL"), leaf("age", "gte", 18)]},
            "serve": {"variant": "on"},
        },
        {"id": "anyone", "when": leaf("email", "exists"), "serve": {"variant": "off"}},
    ]
    steps = traced(flag(rules=rules), who=user("u-1", country="NL", age=12))
    assert steps == [
        {"step": "off", "outcome": False},
        {"step": "target", "list": "deny", "outcome": False},
        {"step": "target", "list": "allow", "outcome": False},
        {
            "step": "rule",
            "rule_id": "dutch",
            "outcome": False,
            "conditions": [
                {
                    "combinator": "all",
                    "outcome": False,
                    "conditions": [
                        {
                            "attribute": "country",
                            "operator": "eq",
                            "expected": "NL",
                            "actual": "NL",
                            "outcome": True,
                        },
                        {
                            "attribute": "age",
                            "operator": "gte",
                            "expected": 18,
                            "actual": 12,
                            "outcome": False,
                        },
                    ],
                }
            ],
        },
        {
            "step": "rule",
            "rule_id": "anyone",
            "outcome": False,
            "conditions": [
                {
                    "attribute": "email",
                    "operator": "exists",
                    "expected": None,
                    "actual": None,
                    "outcome": False,
                }
            ],
        },
        {
            "step": "default",
            "outcome": True,
            "serve": None,
            "variant": "on",
            "bucket": bucket(TENANT, "checkout", "u-1"),
        },
    ]


def test_trace__matching_rule_with_distribution_records_serve_and_bucket() -> None:
    serve = {"distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 0}]}
    steps = traced(
        flag(rules=[{"id": "all", "when": {"any": [leaf("id", "eq", "u-1")]}, "serve": serve}])
    )
    assert steps[-1] == {
        "step": "rule",
        "rule_id": "all",
        "outcome": True,
        "conditions": [
            {
                "combinator": "any",
                "outcome": True,
                "conditions": [
                    {
                        "attribute": "id",
                        "operator": "eq",
                        "expected": "u-1",
                        "actual": "u-1",
                        "outcome": True,
                    }
                ],
            }
        ],
        "serve": serve,
        "variant": "on",
        "bucket": bucket(TENANT, "checkout", "u-1"),
    }


def segment_entry(who: dict[str, Any]) -> dict[str, Any]:
    steps = traced(
        flag(rules=[{"id": "beta", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]),
        who=who,
    )
    entry: dict[str, Any] = steps[3]["conditions"][0]
    return entry


def test_trace__segment_says_what_decided() -> None:
    assert segment_entry(user("u-vip")) == {
        "segment": "beta",
        "outcome": True,
        "matched_by": "included",
        "conditions": [],
    }
    assert segment_entry(user("u-banned", plan="pro"))["matched_by"] == "excluded"
    matched = segment_entry(user("u-1", plan="pro"))
    assert (matched["outcome"], matched["matched_by"]) == (True, "when")
    assert matched["conditions"] == [
        {"attribute": "plan", "operator": "eq", "expected": "pro", "actual": "pro", "outcome": True}
    ]
    missed = segment_entry(user("u-1", plan="free"))
    assert (missed["outcome"], missed["matched_by"]) == (False, None)


def test_trace__targets() -> None:
    assert traced(flag(targets={"deny": ["u-1"]}))[-1] == {
        "step": "target",
        "list": "deny",
        "outcome": True,
        "variant": "off",
    }
    assert traced(flag(targets={"allow": ["u-1"]}))[-1] == {
        "step": "target",
        "list": "allow",
        "outcome": True,
        "variant": "on",
    }


def test_trace__prerequisite_step_nests_the_prerequisites_trace() -> None:
    steps = traced(
        flag("payments", state="off"),
        flag("checkout", prerequisites=[{"flag": "payments", "variants": ["on"]}]),
    )
    assert steps[1] == {
        "step": "prerequisite",
        "flag": "payments",
        "expected": ["on"],
        "actual": "off",
        "outcome": False,
        "reason": "OFF",
        "trace": [{"step": "off", "outcome": True, "variant": "off"}],
    }
    assert len(steps) == 2


def test_trace__missing_prerequisite() -> None:
    stored = validate_flag(flag("checkout", prerequisites=[{"flag": "gone", "variants": ["on"]}]))
    rules = compile_ruleset(
        tenant=TENANT, version="1", flags=[{**stored, "version": 1}], segments=[]
    )
    result = evaluate(rules, "checkout", user("u-1"), trace=True)
    assert result.trace is not None
    assert result.trace[1] == {
        "step": "prerequisite",
        "flag": "gone",
        "expected": ["on"],
        "actual": None,
        "outcome": False,
        "error": "flag not found",
    }


def test_trace__not_bucketable_rule_and_default() -> None:
    serve = {"distribution": [{"variant": "on", "weight": 1}]}
    steps = traced(
        flag(bucket_by="account", rules=[{"id": "split", "when": {"all": []}, "serve": serve}])
    )
    assert steps[-2]["outcome"] is False
    assert steps[-2]["error_code"] == "NOT_BUCKETABLE"
    assert steps[-1] == {
        "step": "default",
        "outcome": False,
        "serve": None,
        "error_code": "NOT_BUCKETABLE",
        "variant": "off",
    }
