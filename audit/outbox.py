"""Reading, announcing and pruning the change-event outbox (api.md, Change events; ADR 0012).

- `events_after(tenant_id, after, limit)`: the tenant's events with a cursor after `after`, in cursor
  order (which is commit order within a tenant).
- `changes_after_version(tenant_id, version, limit)`: what changed after a ruleset version (incremental
  compile, ADR 0018).
- `resume_point(tenant_id, after)`: where a subscriber resumes, or that it must first get `reset`.
- `announce_after_commit(tenant_id)`: once the change commits, tell the stream processes through Redis
  pub/sub (when `REDIS_URL` is set) that the tenant has new events. Without Redis they read the outbox
  every `EVENTS_POLL_INTERVAL`; with it too, more slowly, so that a lost message only delays.
- `prune_events(now)`: delete the rows older than `EVENT_RETENTION_DAYS` in batches (the worker calls it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from audit.models import AuditAction, AuditEntry, ChangeEvent
from kernel import redis

logger = logging.getLogger("flagsvc.events")

MAX_CURSOR_DIGITS = 19
"""A cursor is an id of a 64-bit sequence: at most 19 decimal digits."""
EVENT_ENTITIES = ("flag", "segment", "killswitch")
"""The entities whose changes write an event (audit.receivers)."""


def events_channel() -> str:
    return redis.channel("events")


def events_after(tenant_id: int, after: int, limit: int) -> list[ChangeEvent]:
    """Up to `limit` of the tenant's events after cursor `after`, oldest first, ready for `event_document`."""
    return list(
        ChangeEvent.objects.for_tenant(tenant_id)
        .filter(pk__gt=after)
        .select_related("tenant", "audit_entry")
        .defer("audit_entry__before", "audit_entry__after", "audit_entry__diff")
        .order_by("pk")[:limit]
    )


def changes_after_version(tenant_id: int, version: int, limit: int) -> list[tuple[int, str, str]]:
    """`(ruleset_version, entity, key)` of up to `limit` of the tenant's changes after ruleset `version`,
    in version order: what a process holding `version` must apply to catch up (evaluation.cache).
    Each event names the one version that includes it, so a complete catch-up has one per version."""
    rows = (
        ChangeEvent.objects.for_tenant(tenant_id)
        .filter(ruleset_version__gt=version)
        .order_by("ruleset_version")
        .values_list("ruleset_version", "entity", "entity_key")[:limit]
    )
    return [(int(ruleset_version), entity, key) for ruleset_version, entity, key in rows]


def latest_cursor(tenant_id: int) -> int:
    """The cursor of "the present": the tenant's newest event, 0 if it has none."""
    newest = ChangeEvent.objects.for_tenant(tenant_id).order_by("-pk").values_list("pk", flat=True).first()
    return int(newest or 0)


@dataclass(frozen=True)
class ResumePoint:
    cursor: int
    """Send every event after this one."""
    reset: bool
    """The events after the requested cursor may be incomplete: the client refetches its snapshot."""


def resume_point(tenant_id: int, after: int | None) -> ResumePoint:
    """Where a stream or poll of the tenant continues.

    - No cursor: the present (the newest event; nothing older is sent).
    - The cursor of one of the tenant's retained events: right after it. Every later event is retained
      too (rows are pruned oldest first), so nothing is lost.
    - `0` (the cursor of a tenant without events): from the first event, unless one of the tenant's
      events was pruned already: then reset.
    - Any other cursor: one pruned (older than the retention window), another tenant's, or one that
      was never handed out (a future id): reset, then the present. The client cannot have seen it
      from this tenant's stream, so its snapshot cannot be trusted to be complete.
    """
    if after is None:
        return ResumePoint(latest_cursor(tenant_id), reset=False)
    if after == 0:
        if not _may_have_pruned(tenant_id):
            return ResumePoint(0, reset=False)
    elif ChangeEvent.objects.for_tenant(tenant_id).filter(pk=after).exists():
        return ResumePoint(after, reset=False)
    return ResumePoint(latest_cursor(tenant_id), reset=True)


def _may_have_pruned(tenant_id: int) -> bool:
    """Whether an event of the tenant is gone: every flag or segment audit entry was written with an
    event, so an entry older than the oldest retained event (or any, when none is retained) had one."""
    entries = (
        AuditEntry.objects.for_tenant(tenant_id)
        .filter(entity__in=EVENT_ENTITIES)
        .exclude(action__in=(AuditAction.KILL, AuditAction.UNKILL))  # their event is the switch's
    )
    oldest = (
        ChangeEvent.objects.for_tenant(tenant_id)
        .order_by("pk")
        .values_list("audit_entry__seq", flat=True)
        .first()
    )
    if oldest is not None:
        entries = entries.filter(seq__lt=oldest)
    return entries.exists()


def retention_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.EVENT_RETENTION_DAYS)


def announce_after_commit(tenant_id: int) -> None:
    """After the surrounding transaction commits, wake the stream processes that serve the tenant."""
    if settings.REDIS_URL:
        transaction.on_commit(lambda: announce(tenant_id))


def announce(tenant_id: int) -> None:
    """Redis down: the stream processes' outbox poll delivers it, later."""
    redis.publish(events_channel(), str(tenant_id), what="a change event")


def prune_events(now: datetime) -> int:
    """Delete the outbox rows older than `EVENT_RETENTION_DAYS` before `now`, `EVENT_PRUNE_BATCH` at a
    time (each batch its own short transaction, so writers are never held up for long); returns how
    many. The audit entries stay. Safe to run from several workers at once."""
    cutoff = retention_cutoff(now)
    deleted = 0
    while True:
        batch = list(
            ChangeEvent.all_tenants.filter(ts__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.EVENT_PRUNE_BATCH]
        )
        if not batch:
            return deleted
        count, _ = ChangeEvent.all_tenants.filter(pk__in=batch).delete()
        deleted += count
