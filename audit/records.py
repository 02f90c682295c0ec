"""Audit entries for tenant settings that evaluation never reads (webhooks): the chain's entry alone,
no change event. The apps above audit call this from their services, inside their transaction."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEntry, ChangeEvent
from audit.outbox import announce_after_commit
from audit.receivers import _append_entry
from tenancy.models import Tenant


def audit_record(
    *,
    tenant_id: int,
    entity: str,
    key: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    return _append_entry(tenant_id, entity, key, action, None, before, after)


def audit_record_with_event(
    *,
    tenant_id: int,
    entity: str,
    key: str,
    action: str,
    version: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    """An audit entry and its change event for a change that is not a save of the entity itself
    (a rollout plan scheduled for a flag: `flag.rollout_scheduled`). The event names the tenant's
    current ruleset version: nothing evaluation serves has changed yet."""
    entry = _append_entry(tenant_id, entity, key, action, version, before, after)
    ruleset_version = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).get()
    ChangeEvent.objects.for_tenant(tenant_id).create(
        tenant_id=tenant_id,
        ts=entry.ts,
        entity=entity,
        entity_key=key,
        action=action,
        version=version,
        ruleset_version=ruleset_version,
        audit_entry=entry,
    )
    announce_after_commit(tenant_id)
    return entry
