"""PLACEHOLDER from the `webhooks` branch: the `events` branch owns this module and its version wins
the merge. Only `event_document`, which webhooks use, is here, with the signature agreed for issue 11."""

from __future__ import annotations

from typing import Any

from audit.models import ChangeEvent
from kernel.timefmt import iso

_PAST = {"create": "created", "update": "updated", "archive": "archived", "restore": "restored"}
_PAST |= {"rollback": "rolled_back", "delete": "deleted"}


def event_document(event: ChangeEvent) -> dict[str, Any]:
    entry = event.audit_entry
    return {
        "id": str(event.pk),
        "type": f"{event.entity}.{_PAST.get(event.action, event.action)}",
        "tenant": event.tenant.slug,
        "entity": event.entity,
        "key": event.entity_key,
        "version": event.version,
        "ruleset_version": None,
        "actor": entry.actor,
        "request_id": entry.request_id,
        "ts": iso(event.ts),
    }
