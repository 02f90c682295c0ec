"""Small builders for engine tests: documents in, compiled rulesets and results out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flagsvc_sdk.engine import (
    CompiledRuleset,
    EvaluationResult,
    compile_ruleset,
    evaluate,
    validate_flag,
    validate_segment,
    validate_user,
)

TENANT = "acme"


def flag(key: str = "checkout", **fields: Any) -> dict[str, Any]:
    """A boolean flag that is on, with ``fields`` on top."""
    return {"key": key, "state": "on", **fields}


def user(user_id: str = "u-1", **attributes: Any) -> dict[str, Any]:
    return validate_user({"id": user_id, "attributes": attributes})


def ruleset(
    *flags: Mapping[str, Any],
    segments: Iterable[Mapping[str, Any]] = (),
    tenant: str = TENANT,
    version: int = 1,
) -> CompiledRuleset:
    """Validate and compile ``flags`` (each at ``version``) and ``segments``."""
    segment_docs = [validate_segment(segment) for segment in segments]
    keys = [segment["key"] for segment in segment_docs]
    flag_docs = [{**validate_flag(doc, segment_keys=keys), "version": version} for doc in flags]
    return compile_ruleset(
        tenant=tenant,
        version="r1",
        flags=flag_docs,
        segments=[{**s, "version": 1} for s in segment_docs],
    )


def evaluate_both(rules: CompiledRuleset, key: str, who: Mapping[str, Any]) -> EvaluationResult:
    """Evaluate on the fast path, check the traced path agrees, and return the fast result."""
    fast = evaluate(rules, key, who)
    traced = evaluate(rules, key, who, trace=True)
    assert traced.trace is not None
    assert {**traced.to_dict(), "trace": None} == {**fast.to_dict(), "trace": None}
    return fast


def matches(condition: Mapping[str, Any], who: Mapping[str, Any] | None = None) -> bool:
    """Whether a one-rule flag with ``condition`` serves its rule to ``who``."""
    rules = ruleset(
        flag(
            rules=[{"id": "r", "when": condition, "serve": {"variant": "on"}}],
            default={"variant": "off"},
        )
    )
    result = evaluate_both(rules, "checkout", who if who is not None else user())
    return result.reason == "RULE_MATCH"


def leaf(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    if op in ("exists", "not_exists"):
        return {"attr": attribute, "op": op}
    return {"attr": attribute, "op": op, "value": value}
