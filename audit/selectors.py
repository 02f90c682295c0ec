from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from audit.models import AuditEntry
from kernel.timefmt import iso
from tenancy.models import Tenant


def audit_list(
    *,
    tenant: Tenant | int,
    entity: str | None = None,
    entity_key: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    qs: QuerySet[AuditEntry] = AuditEntry.objects.for_tenant(tenant).all()
    if entity:
        qs = qs.filter(entity=entity)
    if entity_key:
        qs = qs.filter(entity_key=entity_key)
    if actor:
        qs = qs.filter(actor=actor)
    if action:
        qs = qs.filter(action=action)
    if since:
        qs = qs.filter(ts__gte=since)
    if until:
        qs = qs.filter(ts__lt=until)
    return qs.order_by("-ts", "-seq")


def audit_document(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "ts": iso(entry.ts),
        "actor": entry.actor,
        "entity": entry.entity,
        "entity_key": entry.entity_key,
        "action": entry.action,
        "version": entry.version,
        "before": entry.before,
        "after": entry.after,
        "diff": entry.diff,
        "request_id": entry.request_id,
        "reason": entry.reason or None,
    }
