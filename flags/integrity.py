"""The ruleset check: the one place that decides whether a tenant's stored ruleset is whole.

`ruleset_check` runs inside every ruleset transaction (`tenancy.ruleset.ruleset_change`), after the
change is applied and before it commits, under the tenant's lock, on the stored state. It reads the live
flags and the segment keys once (one query each) and asks the engine's `validate_flag`, the one definition
of a valid flag, about:

- each live flag the change wrote (created, updated, restored, rolled back): its segments exist, its
  prerequisites are live flags with the variants it names, no cycle (409 `prerequisite_cycle`, a flag
  naming itself included), no chain deeper than the cap. Its own mistakes are its own errors (422 at the
  exact field, or 409 `prerequisite_cycle`), as on any write;
- each live flag the change did not write but that refers to something it wrote (a segment deleted, a
  flag archived or stripped of a variant it requires): if that flag is no longer valid, the change is
  refused with 409 `conflict`, and `details.flags` names those dependants.

A live flag that was already broken before the change (rows from before this check) and does not refer to
what the change wrote is left alone: the change did not break it, and refusing would lock the tenant out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine import PrerequisiteCycle, ValidationFailed, validate_flag

from flags.selectors import live_flag_contents, segment_keys_in
from flagsvc.errors import Conflict
from segments.selectors import segment_keys
from tenancy.ruleset import RulesetChange


class RulesetConflict(Conflict):
    """The change would leave live flags it did not touch referring to nothing (409 `conflict`)."""


def ruleset_check(change: RulesetChange) -> None:
    """Refuse the change unless every live flag it wrote or affected is valid against the stored ruleset."""
    segments = segment_keys(tenant=change.tenant)
    if not change.flags and change.segments <= segments:
        return  # segments only created or edited: flags name a segment by its key alone
    flags = live_flag_contents(tenant=change.tenant)
    for key in sorted(change.flags & flags.keys()):
        validate_flag(flags[key], segment_keys=segments, live_flags=_others(flags, key))
    broken: dict[str, dict[str, list[str]]] = {}
    for key, doc in flags.items():
        if key in change.flags or not _refers_to(doc, change):
            continue
        try:
            validate_flag(doc, segment_keys=segments, live_flags=_others(flags, key))
        except ValidationFailed as exc:
            caused = {path: msgs for path, msgs in exc.fields.items() if _caused_by(change, doc, path)}
            if caused:
                broken[key] = caused
        except PrerequisiteCycle:
            pass  # taking things away closes no cycle: this one was there before (and is not ours)
    if broken:
        raise _conflict(change, flags, broken)


def _prerequisite_keys(doc: Mapping[str, Any]) -> list[str]:
    return [entry["flag"] for entry in doc["prerequisites"]]


def _others(flags: Mapping[str, dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {other: doc for other, doc in flags.items() if other != key}


def _refers_to(doc: Mapping[str, Any], change: RulesetChange) -> bool:
    return bool(change.flags.intersection(_prerequisite_keys(doc))) or bool(
        change.segments & segment_keys_in(doc["rules"])
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


def _caused_by(change: RulesetChange, doc: Mapping[str, Any], path: str) -> bool:
    """Whether a problem of an untouched flag lies in a reference to something the change wrote."""
    prerequisite = _PREREQUISITE_PATH.match(path)
    if prerequisite is not None:
        target = _value_at(doc, f"prerequisites[{prerequisite[1]}].flag")
        return isinstance(target, str) and target in change.flags
    target = _value_at(doc, path)
    return isinstance(target, str) and target in change.segments


def _conflict(
    change: RulesetChange, flags: Mapping[str, dict[str, Any]], broken: dict[str, dict[str, list[str]]]
) -> RulesetConflict:
    """One sentence per thing the change took away, naming the live flags that still need it."""
    needs: dict[tuple[str, str], set[str]] = {}
    for key in broken:
        doc = flags[key]
        for target in change.flags.intersection(_prerequisite_keys(doc)):
            needs.setdefault(("flag", target), set()).add(key)
        for target in change.segments & segment_keys_in(doc["rules"]):
            needs.setdefault(("segment", target), set()).add(key)
    sentences = [
        _sentence(kind, target, sorted(users), still_live=target in flags)
        for (kind, target), users in sorted(needs.items())
    ]
    dependants = sorted(broken)
    problems = [
        {"flag": key, "field": path, "message": " ".join(messages)}
        for key in dependants
        for path, messages in broken[key].items()
    ]
    return RulesetConflict(
        "; ".join(sentences) + ". Change those flags first; nothing was changed.",
        details={"flags": dependants, "problems": problems},
    )


def _sentence(kind: str, target: str, users: list[str], *, still_live: bool) -> str:
    names = ", ".join(users)
    if kind == "segment":
        return f"Segment {target!r} is used by {len(users)} live flag(s): {names}"
    if still_live:
        return f"Flag {target!r} would lose a variant that {len(users)} live flag(s) require: {names}"
    return f"Flag {target!r} is a prerequisite of {len(users)} live flag(s): {names}"
