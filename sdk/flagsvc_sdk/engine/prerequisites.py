"""Prerequisites (``rules.md`` "Flag fields", ``prerequisites``): the field and the graph.

Each prerequisite names another flag (a live one, when the tenant's flags are known) and variants it
has. On write a flag's prerequisites must also leave the graph acyclic (409 ``prerequisite_cycle``)
and keep every chain within ``MAX_PREREQUISITE_DEPTH`` edges, counting the flags above this one as
well as those below it: a new edge at the bottom of a chain lengthens the chains of every flag that
depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from flagsvc_sdk.engine.errors import PrerequisiteCycle, ValidationFailed
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH
from flagsvc_sdk.engine.problems import Problems, at, item, key_problem, unknown_fields

_PREREQUISITE_FIELDS: Final = frozenset({"flag", "variants"})

Edges = Mapping[str, Sequence[str]]


def check_prerequisites(
    value: Any,
    flag_key: Any,
    live_flags: Mapping[str, Mapping[str, Any]] | None,
    problems: Problems,
) -> list[dict[str, Any]]:
    """``[{"flag", "variants"}]``: other flags (live ones, when ``live_flags`` is known) and their
    variants.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(
            "prerequisites", 'must be a list of {"flag": "<key>", "variants": ["<variant>", ...]}'
        )
        return []
    prerequisites: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        path = item("prerequisites", index)
        if not isinstance(entry, dict):
            problems.add(
                path, 'must be an object {"flag": "<key>", "variants": ["<variant>", ...]}'
            )
            continue
        unknown_fields(entry, _PREREQUISITE_FIELDS, problems, path)
        flag = entry.get("flag")
        other = _prerequisite_flag(flag, flag_key, seen, live_flags, at(path, "flag"), problems)
        variants = entry.get("variants")
        variants_path = at(path, "variants")
        if not isinstance(variants, list) or not variants:
            problems.add(
                variants_path, "required: a non-empty list of the variants this flag must give"
            )
            continue
        known = (
            None
            if other is None
            else {variant.get("key") for variant in other.get("variants") or []}
        )
        for position, variant in enumerate(variants):
            problem = key_problem(variant, "a variant key")
            if problem is not None:
                problems.add(item(variants_path, position), problem)
            elif known is not None and variant not in known:
                problems.add(
                    item(variants_path, position), f"flag {flag!r} has no variant {variant!r}"
                )
        prerequisites.append({"flag": flag, "variants": list(variants)})
    return prerequisites


def _prerequisite_flag(
    flag: Any,
    flag_key: Any,
    seen: set[str],
    live_flags: Mapping[str, Mapping[str, Any]] | None,
    path: str,
    problems: Problems,
) -> Mapping[str, Any] | None:
    """The live document of a prerequisite flag when it can be known; adds problems with the key."""
    problem = key_problem(flag, "a flag key")
    if problem is not None:
        problems.add(path, problem)
        return None
    if flag == flag_key:  # a cycle of one: ``validate_flag`` raises ``PrerequisiteCycle``
        return None
    if flag in seen:
        problems.add(path, f"flag {flag!r} is listed twice: give it once with all its variants")
        return None
    seen.add(flag)
    if live_flags is None:
        return None
    other = live_flags.get(flag)
    if other is None:
        problems.add(path, f"unknown or archived flag {flag!r}: a prerequisite must be a live flag")
    return other


def prerequisite_keys(doc: Mapping[str, Any]) -> list[str]:
    """The keys a (possibly hand-made) flag document names as prerequisites."""
    entries = doc.get("prerequisites") or []
    return [
        entry["flag"]
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get("flag"), str)
    ]


def check_self_prerequisite(key: Any, prerequisites: Sequence[str]) -> None:
    """A flag that names itself is a cycle of one (``[key, key]``), whatever the other flags are."""
    if isinstance(key, str) and key in prerequisites:
        raise PrerequisiteCycle([key, key])


def check_prerequisite_graph(
    key: str, prerequisites: Sequence[str], live_flags: Mapping[str, Mapping[str, Any]]
) -> None:
    """Refuse a cycle through ``key`` (``PrerequisiteCycle``) or a chain deeper than the cap."""
    edges: dict[str, Sequence[str]] = {
        other: prerequisite_keys(doc) for other, doc in live_flags.items() if other != key
    }
    edges[key] = list(prerequisites)
    cycle = find_cycle(key, edges)
    if cycle is not None:
        raise PrerequisiteCycle(cycle)
    below = longest_chain(key, edges)
    dependants: dict[str, list[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            dependants.setdefault(target, []).append(source)
    above = longest_chain(key, dependants)
    chain = list(reversed(above)) + below[1:]
    if len(chain) - 1 > MAX_PREREQUISITE_DEPTH:
        raise ValidationFailed(
            {
                "prerequisites": [
                    f"the prerequisite chain {' -> '.join(chain)} would be {len(chain) - 1} deep; "
                    f"at most {MAX_PREREQUISITE_DEPTH}: shorten the chain"
                ]
            },
            subject="flag",
        )


def find_cycle(start: str, edges: Edges) -> list[str] | None:
    """The first cycle reachable from ``start`` in depth-first order, as ``[a, ..., a]``."""
    done: set[str] = set()
    path: list[str] = [start]
    on_path: set[str] = {start}
    pending: list[list[str]] = [list(reversed(edges.get(start, ())))]
    while pending:
        if not pending[-1]:
            pending.pop()
            finished = path.pop()
            on_path.discard(finished)
            done.add(finished)
            continue
        node = pending[-1].pop()
        if node in on_path:
            return [*path[path.index(node) :], node]
        if node in done:
            continue
        path.append(node)
        on_path.add(node)
        pending.append(list(reversed(edges.get(node, ()))))
    return None


def longest_chain(start: str, edges: Edges) -> list[str]:
    """A longest path from ``start`` along ``edges``, explored no deeper than one past the cap.

    When the true longest path is within the cap the answer is exact; when it is longer, the path
    returned is longer than the cap too, which is all a caller needs to refuse it.
    """
    limit = MAX_PREREQUISITE_DEPTH + 1
    known: dict[str, list[str]] = {}

    def walk(node: str, depth: int) -> list[str]:
        if node in known:
            return known[node]
        best = [node]
        if depth < limit:
            for target in edges.get(node, ()):
                candidate = [node, *walk(target, depth + 1)]
                if len(candidate) > len(best):
                    best = candidate
        known[node] = best
        return best

    return walk(start, 0)
