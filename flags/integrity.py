"""The ruleset check: the one place that decides whether a tenant's stored ruleset is whole.

`ruleset_check` runs inside every ruleset transaction (`tenancy.ruleset.ruleset_change`), after the
change is applied and before it commits, under the tenant's lock, on the stored state. It reads the segment
keys, the prerequisite graph (stored dependency columns, not documents) and the documents of the flags
concerned, and asks the engine's `validate_flag`, the one definition of a valid flag, about:

- each live flag the change wrote (created, updated, restored, rolled back): its segments exist, its
  prerequisites are live flags with the variants it names, no cycle (409 `prerequisite_cycle`, a flag
  naming itself included), no chain deeper than the cap. Its own mistakes are its own errors (422 at the
  exact field, or 409 `prerequisite_cycle`), as on any write;
- each live flag the change did not write but that refers to something it wrote (a segment deleted, a
  flag archived or stripped of a variant it requires): if that flag is no longer valid, the change is
  refused with 409 `conflict`, and `details.flags` names those dependants.

The rule itself is `broken_flags`, a pure function of a ruleset and what a change wrote: the importer's
plan asks it about the state a document would lead to, before writing anything, so a rejected import
lists every problem at once and the final check under the lock never disagrees with it.

A live flag that was already broken before the change (rows from before this check) and does not refer to
what the change wrote is left alone: the change did not break it, and refusing would lock the tenant out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flagsvc_sdk.engine import PrerequisiteCycle, ValidationFailed, validate_flag
from flagsvc_sdk.engine.prerequisites import prerequisite_keys

from flags.selectors import live_flag_contents, live_flag_edges, live_flag_graph, segment_keys_in
from kernel.errors import Conflict
from segments.selectors import segment_keys
from tenancy.ruleset import RulesetChange


class RulesetConflict(Conflict):
    """The change would leave live flags it did not touch referring to nothing (409 `conflict`)."""


@dataclass(frozen=True)
class BrokenFlag:
    """A live flag that is not valid in the ruleset after a change.

    `written`: the change wrote it (its own error); otherwise the change broke it by writing what it
    refers to, and `error` holds only those problems.
    """

    key: str
    written: bool
    error: ValidationFailed | PrerequisiteCycle


def ruleset_check(change: RulesetChange) -> None:
    """Refuse the change unless every live flag it wrote or affected is valid against the stored ruleset.

    Reads what the check needs, not every flag document: the segment keys; from the stored dependency
    columns, the prerequisites of the flags that have any (`live_flag_edges`: the graph's edges, for
    cycles and depth), those using a segment when segments were written, and the variant keys of the
    flags the concerned ones require (`live_flag_graph`); and the documents of the flags concerned
    only (written, or referring to what was written). A flag without prerequisites adds no edge, so
    it is left out of the graph.
    """
    segments = segment_keys(tenant=change.tenant)
    if not change.flags and change.segments <= segments:
        return  # segments only created or edited: flags name a segment by its key alone
    # The edges of the prerequisite graph: only flags with prerequisites have any.
    edges = live_flag_edges(tenant=change.tenant)
    concerned = set(change.flags) | {
        key for key, node in edges.items() if change.flags.intersection(_prerequisite_keys(node))
    }
    if change.segments:
        users = live_flag_graph(tenant=change.tenant, with_segments=True)
        concerned |= {key for key, node in users.items() if change.segments.intersection(node["segments"])}
    flags = live_flag_contents(tenant=change.tenant, keys=concerned)
    # Every flag the concerned ones name as prerequisite: its variants are checked (an edge holds none).
    targets = {target for doc in flags.values() for target in _prerequisite_keys(doc)}
    graph = {**edges, **live_flag_graph(tenant=change.tenant, keys=targets), **_graph_nodes(flags)}
    broken = broken_flags(
        flags=flags,
        segment_keys=segments,
        flags_written=change.flags,
        segments_written=change.segments,
        graph=graph,
    )
    for flag in broken:
        if flag.written:
            raise flag.error
    if broken:
        raise _conflict(change, flags, broken)


def broken_flags(
    *,
    flags: Mapping[str, dict[str, Any]],
    segment_keys: Collection[str],
    flags_written: Collection[str],
    segments_written: Collection[str],
    graph: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[BrokenFlag]:
    """The live flags (`flags`, key → document) that a change writing these keys leaves invalid.

    `flags` holds at least every live flag written or referring to what was written; `graph` holds
    every live flag as reference validation needs it (`variants`, `prerequisites`), and defaults to
    `flags` when that holds them all. Pure: `ruleset_check` runs it on the stored state under the lock,
    the importer's plan on the state a document would lead to, so both judge a ruleset by the same rule.
    """
    live = flags if graph is None else graph
    neighbourhoods = _Neighbourhoods(live)
    written_flags, written_segments = set(flags_written), set(segments_written)
    broken: list[BrokenFlag] = []
    for key, doc in sorted(flags.items()):
        written = key in written_flags
        if not written and not _refers_to(doc, written_flags, written_segments):
            continue
        try:
            validate_flag(doc, segment_keys=segment_keys, live_flags=neighbourhoods.of(key, doc))
        except ValidationFailed as exc:
            if written:
                broken.append(BrokenFlag(key, True, exc))
                continue
            caused = {
                path: messages
                for path, messages in exc.fields.items()
                if _caused_by(doc, path, written_flags, written_segments)
            }
            if caused:
                broken.append(BrokenFlag(key, False, ValidationFailed(caused, subject=f"flag {key!r}")))
        except PrerequisiteCycle as exc:
            if written:  # taking things away closes no cycle: one through an unwritten flag was there before
                broken.append(BrokenFlag(key, True, exc))
    return broken


def _graph_nodes(flags: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The concerned flags themselves as graph nodes (their documents hold what a node holds)."""
    return {
        key: {"key": key, "variants": doc["variants"], "prerequisites": doc["prerequisites"]}
        for key, doc in flags.items()
    }


def _prerequisite_keys(doc: Mapping[str, Any]) -> list[str]:
    return [entry["flag"] for entry in doc["prerequisites"]]


class _Neighbourhoods:
    """Per flag, the live flags its validation can see a difference from: those it reaches through
    prerequisites (they must exist with the variants named, and a cycle or the chain below it runs
    through them) and those that reach it (the chain above it). `validate_flag` gives the same answer
    on them as on every other live flag (the cycle and depth walks never leave them), but its graph
    check reads all of `live_flags` on each call: handing it all of them made a check of N written
    flags N x N (an import of 10,000 flags ran for minutes). The graph is built once here, and each
    flag's neighbourhood costs what it holds, in `live`'s order (so walks, and their messages, are
    the same).
    """

    def __init__(self, live: Mapping[str, Mapping[str, Any]]) -> None:
        self.live = live
        self.position = {key: index for index, key in enumerate(live)}
        self.edges = {key: prerequisite_keys(node) for key, node in live.items()}
        self.dependants: dict[str, list[str]] = {}
        for source, targets in self.edges.items():
            for target in targets:
                self.dependants.setdefault(target, []).append(source)

    def of(self, key: str, doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        """The live flags other than `key` that `key` (with `doc`'s prerequisites) reaches or is reached by."""
        near = _reachable(prerequisite_keys(doc), self.edges, key) | _reachable(
            self.dependants.get(key, ()), self.dependants, key
        )
        near.discard(key)
        return {
            other: self.live[other]
            for other in sorted(near & self.position.keys(), key=self.position.__getitem__)
        }


def _reachable(start: Iterable[str], edges: Mapping[str, Sequence[str]], origin: str) -> set[str]:
    """Every key reachable from `start` along `edges`, not walking on from `origin`."""
    seen: set[str] = set()
    pending = list(start)
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        if node != origin:
            pending.extend(edges.get(node, ()))
    return seen


def _refers_to(doc: Mapping[str, Any], written_flags: set[str], written_segments: set[str]) -> bool:
    return bool(written_flags.intersection(_prerequisite_keys(doc))) or bool(
        written_segments & segment_keys_in(doc["rules"])
    )


_PATH_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_PREREQUISITE_PATH = re.compile(r"prerequisites\[(\d+)\]")


def _value_at(doc: Any, path: str) -> Any:
    """The value at an engine field path (`rules[0].when.all[1].segment`) in a flag document."""
    node = doc
    for name, index in _PATH_STEP.findall(path):
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _caused_by(
    doc: Mapping[str, Any], path: str, written_flags: set[str], written_segments: set[str]
) -> bool:
    """Whether a problem of an unwritten flag lies in a reference to something the change wrote."""
    prerequisite = _PREREQUISITE_PATH.match(path)
    if prerequisite is not None:
        target = _value_at(doc, f"prerequisites[{prerequisite[1]}].flag")
        return isinstance(target, str) and target in written_flags
    target = _value_at(doc, path)
    return isinstance(target, str) and target in written_segments


def _conflict(
    change: RulesetChange, flags: Mapping[str, dict[str, Any]], broken: list[BrokenFlag]
) -> RulesetConflict:
    """One sentence per thing the change took away, naming the live flags that still need it."""
    needs: dict[tuple[str, str], set[str]] = {}
    for flag in broken:
        doc = flags[flag.key]
        for target in change.flags.intersection(_prerequisite_keys(doc)):
            needs.setdefault(("flag", target), set()).add(flag.key)
        for target in change.segments & segment_keys_in(doc["rules"]):
            needs.setdefault(("segment", target), set()).add(flag.key)
    sentences = [
        _sentence(kind, target, sorted(users), still_live=target in flags)
        for (kind, target), users in sorted(needs.items())
    ]
    problems = [
        {"flag": flag.key, "field": path, "message": " ".join(messages)}
        for flag in broken
        if isinstance(flag.error, ValidationFailed)
        for path, messages in flag.error.fields.items()
    ]
    return RulesetConflict(
        "; ".join(sentences) + ". Change those flags first; nothing was changed.",
        details={"flags": [flag.key for flag in broken], "problems": problems},
    )


def _sentence(kind: str, target: str, users: list[str], *, still_live: bool) -> str:
    names = ", ".join(users)
    if kind == "segment":
        return f"Segment {target!r} is used by {len(users)} live flag(s): {names}"
    if still_live:
        return f"Flag {target!r} would lose a variant that {len(users)} live flag(s) require: {names}"
    return f"Flag {target!r} is a prerequisite of {len(users)} live flag(s): {names}"
