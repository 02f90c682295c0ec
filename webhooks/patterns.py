"""Which events a webhook subscribes to: exact types (`segment.deleted`), every type of an entity
(`flag.*`), or everything (`*`). Types are api.md's (Change events), the ones to come included, so a
subscription made today keeps working when a capability starts emitting its events.

`flag.exposure` (webhooks.exposures) is no change event and is high-volume: only a webhook that names
it exactly hears it; `flag.*` and `*` do not include it, so no existing subscription starts receiving
analytics traffic (and user ids) it never asked for."""

from __future__ import annotations

from collections.abc import Iterable

EVENT_TYPES: tuple[str, ...] = (
    "flag.created",
    "flag.updated",
    "flag.archived",
    "flag.restored",
    "flag.rolled_back",
    "flag.rollout_scheduled",
    "flag.rollout_progress",
    "flag.rollout_completed",
    "segment.created",
    "segment.updated",
    "segment.deleted",
    "killswitch.engaged",
    "killswitch.released",
    "change_request.opened",
    "change_request.approved",
    "change_request.applied",
    "change_request.rejected",
)
EXPLICIT_ONLY: tuple[str, ...] = ("flag.exposure",)
"""Types that no wildcard matches: a webhook must name them."""
ENTITIES: frozenset[str] = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
MAX_PATTERNS = 50


def pattern_errors(patterns: object) -> list[str]:
    """What is wrong with an `events` list, for a person; empty when it is fine."""
    if not isinstance(patterns, list) or not patterns:
        return ['A non-empty list of event types or patterns, such as ["flag.*", "segment.deleted"].']
    if len(patterns) > MAX_PATTERNS:
        return [f"At most {MAX_PATTERNS} patterns."]
    errors = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            errors.append(f"[{index}]: a string.")
        elif (
            pattern != "*"
            and pattern not in EVENT_TYPES
            and pattern not in EXPLICIT_ONLY
            and not _is_entity_wildcard(pattern)
        ):
            errors.append(
                f"[{index}]: {pattern!r} is no event type; use one of "
                f"{', '.join(EVENT_TYPES + EXPLICIT_ONLY)}, "
                f"'<entity>.*' ({', '.join(sorted(ENTITIES))}) or '*'."
            )
    return errors


def _is_entity_wildcard(pattern: str) -> bool:
    entity, dot, rest = pattern.partition(".")
    return dot == "." and rest == "*" and entity in ENTITIES


def matches(patterns: Iterable[str], event_type: str) -> bool:
    if event_type in EXPLICIT_ONLY:
        return event_type in patterns
    entity = event_type.split(".", 1)[0]
    return any(p == "*" or p == event_type or p == f"{entity}.*" for p in patterns)
