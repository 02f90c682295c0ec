"""``evaluate`` and ``evaluate_many``: ``rules.md`` "Order of evaluation and reasons", step by step.

This is the hot path. It does one dict lookup for the flag, one hash, the rules' precompiled
predicates and one small allocation for the result; everything else was done by ``compile_ruleset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import mmh3

from flagsvc_sdk.engine.bucketing import pick_index
from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledRuleset
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH
from flagsvc_sdk.engine.results import EvaluationResult, Outcome, not_found
from flagsvc_sdk.engine.tracing import trace_flag
from flagsvc_sdk.engine.values import bucket_string, is_utf8, read_path

Memo = dict[str, EvaluationResult | None]
"""Results by flag key for one user; ``None`` marks a flag still being evaluated (a cycle)."""

_hash: Final = mmh3.hash  # Final: compiled, a static instead of a module-dict lookup


def evaluate(
    ruleset: CompiledRuleset, flag_key: str, user: Mapping[str, Any], *, trace: bool = False
) -> EvaluationResult:
    """Evaluate one flag for a validated user (``validate_user``).

    An unknown flag gives variant ``None``, reason ``ERROR`` and ``error_code`` ``FLAG_NOT_FOUND``.
    With ``trace=True`` the result also lists every step and condition tried (a slower path).
    """
    try:
        flag = ruleset.flags[flag_key]
    except KeyError:
        return not_found(flag_key)
    if trace:
        return trace_flag(ruleset.flags, flag, user, {}, 0)
    return decide(ruleset.flags, flag, user, None, 0)


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
                result = decide(flags, flag, user, memo, 0)
                memo[key] = result
        results[key] = result
    return results


def decide(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user: Mapping[str, Any],
    memo: Memo | None,
    depth: int,
) -> EvaluationResult:
    """Steps 2-7 of ``rules.md`` "Order of evaluation and reasons" for one flag.

    The bucket is computed first, whichever step decides, because ``details.bucket`` is always
    present when the user can be bucketed. A Python call is a good share of an evaluation's cost,
    so ``CompiledFlag.bucket_position`` and ``Distribution.pick`` are inlined here, and the result
    is built once, at the end.
    """
    user_id: str = user["id"]
    attributes: dict[str, Any] = user["attributes"]
    position: float | None = None
    if flag.bucket_path is None:
        if user_id.isascii() or is_utf8(user_id):
            position = _hash(flag.prefix + user_id, 0, False) / 4294967296
    else:
        value = bucket_string(read_path(attributes, flag.bucket_path))
        if value is not None:
            position = _hash(flag.prefix + value, 0, False) / 4294967296
    outcome: Outcome | None = None
    if flag.gated:
        if flag.is_off:
            outcome = flag.off_outcome
        elif flag.prerequisites:
            outcome = _failed_prerequisite(
                flags, flag, user, {flag.key: None} if memo is None else memo, depth
            )
        if outcome is None:
            if user_id in flag.deny:
                outcome = flag.deny_outcome
            elif user_id in flag.allow:
                outcome = flag.allow_outcome
    if outcome is None:
        for rule in flag.rules:
            if rule.outcome is not None:
                if rule.when(user_id, attributes):
                    outcome = rule.outcome
                    break
            elif position is not None and rule.when(user_id, attributes):
                outcome = rule.choices[pick_index(rule.shares, position)]
                break
        else:
            if flag.default_outcome is not None:
                outcome = flag.default_outcome
            elif position is None:
                outcome = flag.not_bucketable
            else:
                outcome = flag.default_choices[pick_index(flag.default_shares, position)]
    return EvaluationResult(outcome, position)


def _failed_prerequisite(
    flags: Mapping[str, CompiledFlag],
    flag: CompiledFlag,
    user: Mapping[str, Any],
    memo: Memo,
    depth: int,
) -> Outcome | None:
    """The answer for the first direct prerequisite not met, or ``None`` when all are met.

    A prerequisite that is missing, part of a cycle or deeper than the cap is not met.
    """
    for prerequisite in flag.prerequisites:
        key = prerequisite.flag_key
        if key in memo:
            result = memo[key]
        else:
            other = flags.get(key)
            result = None
            if other is not None and depth < MAX_PREREQUISITE_DEPTH:
                memo[key] = None
                result = decide(flags, other, user, memo, depth + 1)
                memo[key] = result
        if result is None or result.outcome.variant not in prerequisite.variants:
            return prerequisite.failed
    return None
