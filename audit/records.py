"""Audit entries written by services rather than by the model signals, inside the service's transaction:

- `audit_record`: tenant settings that evaluation never reads (webhooks): the chain's entry alone, no
  change event.
- `audit_tenant_event`: one operation over many entities (a kill switch, flags.killswitch): its own
  entry and its one change event, after the per-entity entries the signals wrote.
- `audit_event`: a change evaluation does not serve (a change request's life): an entry and its event
  at the tenant's current ruleset version.
"""

from __future__ import annotations

from typing import Any

from audit.models import AuditEntry
from audit.receivers import _append_entry, _append_event
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


def audit_tenant_event(
    *,
    tenant_id: int,
    entity: str,
    key: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    """An entry and its change event (type from `audit.events.EVENT_TYPES`) for a tenant-level operation."""
    entry = _append_entry(tenant_id, entity, key, action, None, before, after)
    _append_event(entry)
    return entry


def audit_event(
    *,
    tenant_id: int,
    entity: str,
    key: str,
    action: str,
    version: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    """An audit entry and its change event (the outbox), for a change that evaluation does not serve
    (a change request's life, a rollout plan scheduled): the event names the tenant's current ruleset
    version, not a new one."""
    entry = _append_entry(tenant_id, entity, key, action, version, before, after)
    current = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).get()
    _append_event(entry, ruleset_version=current)
    return entry
