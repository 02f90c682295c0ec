"""What each step of the preview's trace looks like (``api.md`` "Evaluation", preview).

``evaluation.decide`` walks the steps and decides them, traced or not; it hands each step it took
here to be recorded as ``{"step": "off"|"prerequisite"|"target"|"rule"|"default", "outcome": bool,
...}``. Conditions tried inside a rule are ``{"attribute", "operator", "expected", "actual",
"outcome"}``; ``all``/``any``/``not`` are ``{"combinator", "outcome", "conditions"}``; a segment is
``{"segment", "outcome", "matched_by", "conditions"}`` (``conditions.trace_condition``). Nothing
here decides anything: the traced and untraced answers are one walk.
"""

from __future__ import annotations

from typing import Any

from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledPrerequisite, CompiledRule
from flagsvc_sdk.engine.results import NOT_BUCKETABLE, EvaluationResult, Outcome
from flagsvc_sdk.engine.values import copy_json

Step = dict[str, Any]


def off_step(flag: CompiledFlag) -> Step:
    step: Step = {"step": "off", "outcome": flag.is_off}
    if flag.is_off:
        step["variant"] = flag.off_outcome.variant
    return step


def prerequisite_step(
    prerequisite: CompiledPrerequisite, result: EvaluationResult | None, met: bool, unmet: str
) -> Step:
    """A prerequisite, with the prerequisite's own trace, or why it could not be evaluated."""
    step: Step = {
        "step": "prerequisite",
        "flag": prerequisite.flag_key,
        "expected": list(prerequisite.expected),
        "actual": None if result is None else result.variant,
        "outcome": met,
    }
    if result is not None:
        step.update(reason=result.reason, trace=result.trace)
    else:
        step["error"] = unmet
    return step


def add_target_steps(steps: list[Step], flag: CompiledFlag, outcome: Outcome | None) -> None:
    """The deny list, then (unless it matched) the allow list; ``outcome`` is what they decided."""
    for name, listed in (
        ("deny", outcome is flag.deny_outcome),
        ("allow", outcome is flag.allow_outcome),
    ):
        step: Step = {"step": "target", "list": name, "outcome": listed}
        steps.append(step)
        if listed:
            assert outcome is not None
            step["variant"] = outcome.variant
            return


def rule_step(
    rule: CompiledRule,
    condition: dict[str, Any] | None,
    matched: bool,
    outcome: Outcome | None,
    position: float | None,
) -> Step:
    """A rule tried; a matching split rule serves nothing (``NOT_BUCKETABLE``) without a bucket."""
    step: Step = {"step": "rule", "rule_id": rule.id, "outcome": matched, "conditions": [condition]}
    if not matched:
        return step
    step["serve"] = copy_json(rule.serve)
    if outcome is None:
        step.update(outcome=False, error_code=NOT_BUCKETABLE)
        return step
    step["variant"] = outcome.variant
    if rule.outcome is None:
        step["bucket"] = position
    return step


def default_step(flag: CompiledFlag, outcome: Outcome, position: float | None) -> Step:
    step: Step = {"step": "default", "outcome": True, "serve": copy_json(flag.doc["default"])}
    if outcome is flag.not_bucketable:
        step.update(outcome=False, error_code=NOT_BUCKETABLE, variant=outcome.variant)
        return step
    step["variant"] = outcome.variant
    if flag.default_outcome is None:
        step["bucket"] = position
    return step
