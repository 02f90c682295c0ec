"""Audit entries for tenant settings that evaluation never reads (webhooks): the chain's entry alone,
no change event. The apps above audit call this from their services, inside their transaction."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEntry
from audit.receivers import _append_entry


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
