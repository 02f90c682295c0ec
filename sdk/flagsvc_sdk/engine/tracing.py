"""The traced path of ``evaluate(..., trace=True)`` for the preview (``api.md`` "Evaluation").

It takes the same steps as ``evaluation.decide`` over the same compiled flag and records each:
``{"step": "off"|"prerequisite"|"target"|"rule"|"default", "outcome": bool, ...}``. Conditions tried
inside a rule are ``{"attribute", "operator", "expected", "actual", "outcome"}``;
``all``/``any``/``not`` are ``{"combinator", "outcome", "conditions"}``; a segment is ``{"segment",
"outcome", "matched_by", "conditions"}``. A property test keeps both paths in agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledPrerequisite
from flagsvc_sdk.engine.conditions import trace_condition
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH
from flagsvc_sdk.engine.results import NOT_BUCKETABLE, Outcome, TracedEvaluationResult
from flagsvc_sdk.engine.values import copy_json

Step = dict[str, Any]
TracedMemo = dict[str, TracedEvaluationResult | None]


def trace_flag(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user: Mapping[str, Any],
    memo: TracedMemo,
    depth: int,
) -> TracedEvaluationResult:
    """Evaluate ``flag`` like ``decide`` and return the result with its steps."""
    user_id: str = user["id"]
    attributes = user["attributes"]
    position = flag.bucket_position(user_id, attributes)
    steps: list[Step] = []

    def finish(outcome: Outcome) -> TracedEvaluationResult:
        return TracedEvaluationResult(outcome, position, steps)

    steps.append({"step": "off", "outcome": flag.is_off})
    if flag.is_off:
        steps[-1]["variant"] = flag.off_outcome.variant
        return finish(flag.off_outcome)
    memo.setdefault(flag.key, None)
    for prerequisite in flag.prerequisites:
        if not _prerequisite_step(flags, prerequisite, user, memo, depth, steps):
            return finish(prerequisite.failed)
    for name, ids, outcome in (
        ("deny", flag.deny, flag.deny_outcome),
        ("allow", flag.allow, flag.allow_outcome),
    ):
        listed = user_id in ids
        steps.append({"step": "target", "list": name, "outcome": listed})
        if listed:
            steps[-1]["variant"] = outcome.variant
            return finish(outcome)
    for rule in flag.rules:
        matched, condition = trace_condition(rule.node, user_id, attributes)
        step: Step = {
            "step": "rule",
            "rule_id": rule.id,
            "outcome": matched,
            "conditions": [condition],
        }
        steps.append(step)
        if not matched:
            continue
        step["serve"] = copy_json(rule.serve)
        if rule.outcome is not None:
            step["variant"] = rule.outcome.variant
            return finish(rule.outcome)
        if position is None:
            step.update(outcome=False, error_code=NOT_BUCKETABLE)
            continue
        chosen = rule.distribution.pick(position)
        step.update(variant=chosen.variant, bucket=position)
        return finish(chosen)
    return _default_step(flag, position, steps)


def _default_step(
    flag: CompiledFlag, position: float | None, steps: list[Step]
) -> TracedEvaluationResult:
    serve = copy_json(flag.doc["default"])
    step: Step = {"step": "default", "outcome": True, "serve": serve}
    steps.append(step)
    if flag.default_outcome is not None:
        step["variant"] = flag.default_outcome.variant
        return TracedEvaluationResult(flag.default_outcome, position, steps)
    if position is None:
        step.update(outcome=False, error_code=NOT_BUCKETABLE, variant=flag.not_bucketable.variant)
        return TracedEvaluationResult(flag.not_bucketable, None, steps)
    chosen = flag.default_distribution.pick(position)
    step.update(variant=chosen.variant, bucket=position)
    return TracedEvaluationResult(chosen, position, steps)


def _prerequisite_step(
    flags: Mapping[str, CompiledFlag],
    prerequisite: CompiledPrerequisite,
    user: Mapping[str, Any],
    memo: TracedMemo,
    depth: int,
    steps: list[Step],
) -> bool:
    """Record one prerequisite, evaluated (traced) for the same user; whether it is met."""
    key = prerequisite.flag_key
    note = None
    if key in memo:
        result = memo[key]
        if result is None:
            note = "cycle"
    else:
        other = flags.get(key)
        result = None
        if other is None:
            note = "flag not found"
        elif depth >= MAX_PREREQUISITE_DEPTH:
            note = "chain too deep"
        else:
            memo[key] = None
            result = trace_flag(flags, other, user, memo, depth + 1)
            memo[key] = result
    met = result is not None and result.variant in prerequisite.variants
    step: Step = {
        "step": "prerequisite",
        "flag": key,
        "expected": list(prerequisite.expected),
        "actual": None if result is None else result.variant,
        "outcome": met,
    }
    if result is not None:
        step.update(reason=result.reason, trace=result.trace)
    else:
        step["error"] = note
    steps.append(step)
    return met
