"""``evaluate`` and ``evaluate_many``: ``rules.md`` "Order of evaluation and reasons", step by step.

The order of the steps is written once, in ``walk``; the preview's trace is that same walk with
a list to record its steps in (``tracing`` only says what each step looks like). This is the hot
path: untraced it does one dict lookup for the flag, one hash, the rules' precompiled predicates and
one small allocation for the result (none for the SDK's typed calls, which read ``walk``'s outcome);
everything else was done by ``compile_ruleset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from flagsvc_sdk.engine import tracing
from flagsvc_sdk.engine.bucketing import bucket_of, pick_index
from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledRuleset
from flagsvc_sdk.engine.conditions import TraceEntry, trace_condition
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH
from flagsvc_sdk.engine.results import (
    EvaluationResult,
    Outcome,
    TracedEvaluationResult,
    not_found,
)
from flagsvc_sdk.engine.values import bucket_string, is_utf8, read_path

Memo = dict[str, EvaluationResult | None]
"""Results by flag key for one user; ``None`` marks a flag still being evaluated (a cycle)."""

Trace = list[dict[str, Any]]
"""The steps of one traced evaluation, ``None`` when not tracing."""


def evaluate(
    ruleset: CompiledRuleset, flag_key: str, user: Mapping[str, Any], *, trace: bool = False
) -> EvaluationResult:
    """Evaluate one flag for a validated user (``validate_user``).

    An unknown flag gives variant ``None``, reason ``ERROR`` and ``error_code`` ``FLAG_NOT_FOUND``.
    With ``trace=True`` the result also lists every step and condition tried: the same walk,
    recording as it goes.
    """
    try:
        flag = ruleset.flags[flag_key]
    except KeyError:
        return not_found(flag_key)
    return decide(ruleset.flags, flag, user, None, 0, [] if trace else None)


def evaluate_many(
    ruleset: CompiledRuleset, user: Mapping[str, Any], flag_keys: Iterable[str] | None = None
) -> dict[str, EvaluationResult]:
    """Evaluate several flags (all of them when ``flag_keys`` is ``None``) for one user.

    A flag that is a prerequisite of several others is evaluated once.
    """
    flags = ruleset.flags
    memo: Memo = {}
    results: dict[str, EvaluationResult] = {}
    for key in flags if flag_keys is None else flag_keys:
        result = memo.get(key)
        if result is None:
            flag = flags.get(key)
            if flag is None:
                result = not_found(key)
            else:
                memo[key] = None
                result = decide(flags, flag, user, memo, 0, None)
                memo[key] = result
        results[key] = result
    return results


NO_BUCKET: Final = -1.0
"""The position ``walk`` gives a user it cannot bucket: buckets lie in [0, 1), so no bucket is
negative, and a plain float (not ``float | None``) stays unboxed in the compiled engine."""


def decide(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user: Mapping[str, Any],
    memo: Memo | None,
    depth: int,
    trace: Trace | None,
) -> EvaluationResult:
    """Steps 2-7 of ``rules.md`` "Order of evaluation and reasons" for one flag and a validated
    user: ``walk``'s answer as a result.

    The id is checked here, once, before it can reach ``mmh3`` (which crashes the process on a
    lone surrogate); ``validate_user`` has already checked it, but ``evaluate`` is a public door.
    """
    user_id: str = user["id"]
    return _result(
        flags,
        flag,
        user_id,
        user["attributes"],
        user_id.isascii() or is_utf8(user_id),
        memo,
        depth,
        trace,
    )


def _result(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user_id: str,
    attributes: dict[str, Any],
    hashable_id: bool,
    memo: Memo | None,
    depth: int,
    trace: Trace | None,
) -> EvaluationResult:
    outcome, position = walk(flags, flag, user_id, attributes, hashable_id, memo, depth, trace)
    bucket = None if position < 0.0 else position
    if trace is not None:
        return TracedEvaluationResult(outcome, bucket, trace)
    return EvaluationResult(outcome, bucket)


def walk(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user_id: str,
    attributes: dict[str, Any],
    hashable_id: bool,
    memo: Memo | None,
    depth: int,
    trace: Trace | None,
) -> tuple[Outcome, float]:
    """The order of the steps, written once: the answer and the user's bucket (``NO_BUCKET`` when
    the user cannot be bucketed).

    ``hashable_id`` says the id is valid UTF-8 (the caller checked it: ``decide``, or the SDK's
    typed calls through ``plain_user``). The bucket is computed first, whichever step decides,
    because ``details.bucket`` is always present when the user can be bucketed. With a ``trace``
    list every step tried is appended to it, after the walk has decided it; without one, nothing
    is recorded and a flag with no off, prerequisite or target step (not ``gated``) goes straight
    to its rules. ``Distribution.pick`` is inlined (a Python call is a good share of an
    evaluation's cost). Compiled, the answer is a pair of native values: the SDK's typed calls,
    which need only the outcome's value, allocate nothing here.
    """
    position = NO_BUCKET  # rules.md "Bucketing": no bucket without a valid value
    bucket_path = flag.bucket_path
    if bucket_path is None:
        if hashable_id:
            position = bucket_of(flag.prefix + user_id)
    else:
        value = bucket_string(read_path(attributes, bucket_path))
        if value is not None and is_utf8(value):
            position = bucket_of(flag.prefix + value)
    outcome: Outcome | None = None
    if flag.gated or trace is not None:
        if trace is not None:
            trace.append(tracing.off_step(flag))
        if flag.is_off:
            outcome = flag.off_outcome
        else:
            if flag.prerequisites:
                outcome = _failed_prerequisite(
                    flags,
                    flag,
                    user_id,
                    attributes,
                    hashable_id,
                    {flag.key: None} if memo is None else memo,
                    depth,
                    trace,
                )
            if outcome is None:
                if user_id in flag.deny:
                    outcome = flag.deny_outcome
                elif user_id in flag.allow:
                    outcome = flag.allow_outcome
                if trace is not None:
                    tracing.add_target_steps(trace, flag, outcome)
    if outcome is None:
        condition: TraceEntry | None = None
        for rule in flag.rules:
            single = rule.outcome
            if trace is not None:
                matched, condition = trace_condition(rule.node, user_id, attributes)
            elif single is None and position < 0.0:
                continue  # a split serves no one who cannot be bucketed: the condition is moot
            else:
                matched = rule.when.holds(user_id, attributes)
            if matched:
                if single is not None:
                    outcome = single
                elif position >= 0.0:
                    outcome = rule.choices[pick_index(rule.shares, position)]
            if trace is not None:
                bucket = _bucket(position)
                trace.append(tracing.rule_step(rule, condition, matched, outcome, bucket))
            if outcome is not None:
                break
        else:
            if flag.default_outcome is not None:
                outcome = flag.default_outcome
            elif position < 0.0:
                outcome = flag.not_bucketable
            else:
                outcome = flag.default_choices[pick_index(flag.default_shares, position)]
            if trace is not None:
                trace.append(tracing.default_step(flag, outcome, _bucket(position)))
    return outcome, position


def _bucket(position: float) -> float | None:
    return None if position < 0.0 else position


def _failed_prerequisite(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user_id: str,
    attributes: dict[str, Any],
    hashable_id: bool,
    memo: Memo,
    depth: int,
    trace: Trace | None,
) -> Outcome | None:
    """The answer for the first direct prerequisite not met, or ``None`` when all are met.

    A prerequisite that is missing, part of a cycle or deeper than the cap is not met. Traced, each
    prerequisite tried is a step holding its own (traced) evaluation.
    """
    for prerequisite in flag.prerequisites:
        key = prerequisite.flag_key
        unmet = "cycle"  # why it has no result: the step's ``error``
        if key in memo:
            result = memo[key]
        else:
            other = flags.get(key)
            result = None
            if other is None:
                unmet = "flag not found"
            elif depth >= MAX_PREREQUISITE_DEPTH:
                unmet = "chain too deep"
            else:
                memo[key] = None
                result = _result(
                    flags,
                    other,
                    user_id,
                    attributes,
                    hashable_id,
                    memo,
                    depth + 1,
                    None if trace is None else [],
                )
                memo[key] = result
        met = result is not None and result.outcome.variant in prerequisite.variants
        if trace is not None:
            trace.append(tracing.prerequisite_step(prerequisite, result, met, unmet))
        if not met:
            return prerequisite.failed
    return None
