"""How large a preview trace can get, before anything is evaluated (``api.md`` "Evaluation").

A traced evaluation records one entry per step and per condition it tries (``tracing``). Its size
for one user is at most the count below: the flag's steps and every condition of every rule, a
segment's conditions wherever the segment is named, and each prerequisite flag once (an
evaluation evaluates a prerequisite once per user). The server multiplies it by the number of users
to refuse a preview whose work or answer would be too large before it starts.
"""

from __future__ import annotations

from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledRuleset
from flagsvc_sdk.engine.conditions import Leaf, Node, SegmentReference

_FIXED_STEPS = 4
"""``off``, the two ``target`` lists and ``default``."""


def trace_entries_bound(ruleset: CompiledRuleset, flag_key: str) -> int:
    """The most entries one user's traced evaluation of ``flag_key`` can hold; 0 if unknown."""
    total = 0
    seen: set[str] = set()
    pending = [flag_key]
    while pending:
        key = pending.pop()
        flag = ruleset.flags.get(key)
        if key in seen or flag is None:
            continue
        seen.add(key)
        total += _flag_entries(flag)
        pending.extend(prerequisite.flag_key for prerequisite in flag.prerequisites)
    return total


def _flag_entries(flag: CompiledFlag) -> int:
    return (
        _FIXED_STEPS
        + len(flag.prerequisites)
        + sum(1 + _node_entries(rule.node) for rule in flag.rules)
    )


def _node_entries(node: Node) -> int:
    if isinstance(node, Leaf):
        return 1
    if isinstance(node, SegmentReference):
        when = node.segment.when
        return 1 + (0 if when is None else _node_entries(when))
    return 1 + sum(_node_entries(child) for child in node.children)
