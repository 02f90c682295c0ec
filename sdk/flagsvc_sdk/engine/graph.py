"""The prerequisite graph of a tenant's live flags (``rules.md`` "Flag fields", ``prerequisites``).

On write a flag's prerequisites must leave the graph acyclic (409 ``prerequisite_cycle``) and keep
every chain within ``MAX_PREREQUISITE_DEPTH`` edges, counting the flags above this one as well as
those below it: a new edge at the bottom of a chain lengthens the chains of every flag that depends
on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flagsvc_sdk.engine.errors import PrerequisiteCycle, ValidationFailed
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH

Edges = Mapping[str, Sequence[str]]


def prerequisite_keys(doc: Mapping[str, Any]) -> list[str]:
    """The keys a (possibly hand-made) flag document names as prerequisites."""
    entries = doc.get("prerequisites") or []
    return [
        entry["flag"]
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get("flag"), str)
    ]


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
