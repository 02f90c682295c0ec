"""The change event as subscribers see it (api.md, Change events): its type and its JSON document.

One place for both, so the stream (`GET /v1/events`) and the webhooks send the same document. The
document is built from the outbox row (`ChangeEvent`) and the audit entry it was written with.
"""

from __future__ import annotations

from typing import Any

from audit.models import AuditAction, ChangeEvent
from kernel.timefmt import iso

FLAG_CREATED = "flag.created"
FLAG_UPDATED = "flag.updated"
FLAG_ARCHIVED = "flag.archived"
FLAG_RESTORED = "flag.restored"
FLAG_ROLLED_BACK = "flag.rolled_back"
SEGMENT_CREATED = "segment.created"
SEGMENT_UPDATED = "segment.updated"
SEGMENT_DELETED = "segment.deleted"
KILLSWITCH_ENGAGED = "killswitch.engaged"
KILLSWITCH_RELEASED = "killswitch.released"
CHANGE_REQUEST_OPENED = "change_request.opened"
CHANGE_REQUEST_APPROVED = "change_request.approved"
CHANGE_REQUEST_APPLIED = "change_request.applied"
CHANGE_REQUEST_REJECTED = "change_request.rejected"
FLAG_ROLLOUT_SCHEDULED = "flag.rollout_scheduled"
FLAG_ROLLOUT_PROGRESS = "flag.rollout_progress"
FLAG_ROLLOUT_COMPLETED = "flag.rollout_completed"

EVENT_TYPES: dict[tuple[str, str], str] = {
    ("flag", AuditAction.CREATE): FLAG_CREATED,
    ("flag", AuditAction.UPDATE): FLAG_UPDATED,
    ("flag", AuditAction.ARCHIVE): FLAG_ARCHIVED,
    ("flag", AuditAction.RESTORE): FLAG_RESTORED,
    ("flag", AuditAction.ROLLBACK): FLAG_ROLLED_BACK,
    ("segment", AuditAction.CREATE): SEGMENT_CREATED,
    ("segment", AuditAction.UPDATE): SEGMENT_UPDATED,
    ("segment", AuditAction.DELETE): SEGMENT_DELETED,
    ("killswitch", AuditAction.ENGAGE): KILLSWITCH_ENGAGED,
    ("killswitch", AuditAction.RELEASE): KILLSWITCH_RELEASED,
    ("change_request", AuditAction.OPEN): CHANGE_REQUEST_OPENED,
    ("change_request", AuditAction.APPROVE): CHANGE_REQUEST_APPROVED,
    ("change_request", AuditAction.APPLY): CHANGE_REQUEST_APPLIED,
    ("change_request", AuditAction.REJECT): CHANGE_REQUEST_REJECTED,
    ("flag", AuditAction.ROLLOUT_SCHEDULE): FLAG_ROLLOUT_SCHEDULED,
    ("flag", AuditAction.ROLLOUT_PROGRESS): FLAG_ROLLOUT_PROGRESS,
    ("flag", AuditAction.ROLLOUT_COMPLETE): FLAG_ROLLOUT_COMPLETED,
}
"""(entity, audit action) → event type. Every event the outbox holds today has one of these."""

TYPE_NAMES: tuple[str, ...] = tuple(EVENT_TYPES.values())
ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(entity for entity, _ in EVENT_TYPES))
"""The `entity` an event can name (flag, segment, killswitch, change_request), in EVENT_TYPES' order."""


def event_type(entity: str, action: str) -> str:
    """The event type of an outbox row: `<entity>.<past participle>`, as listed in api.md.

    A pair that api.md does not list (none is written today) still gets a stable, readable name.
    """
    known = EVENT_TYPES.get((entity, action))
    if known is not None:
        return known
    return f"{entity}.{action}d" if action.endswith("e") else f"{entity}.{action}ed"


def cursor(event_id: int) -> str:
    """An event's cursor: its id as a decimal string (api.md)."""
    return str(event_id)


def event_document(event: ChangeEvent) -> dict[str, Any]:
    """The event exactly as api.md shows it. Reads `event.tenant` and `event.audit_entry`: load them
    with the row (`audit.outbox.events_after` does) when rendering many."""
    entry = event.audit_entry
    return {
        "id": cursor(event.pk),
        "type": event_type(event.entity, event.action),
        "tenant": event.tenant.slug,
        "entity": event.entity,
        "key": event.entity_key,
        "version": event.version,
        "ruleset_version": None if event.ruleset_version is None else str(event.ruleset_version),
        "actor": entry.actor,
        "request_id": entry.request_id,
        "ts": iso(event.ts),
    }
