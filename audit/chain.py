"""The per-tenant hash chain of audit entries (tamper evidence).

entry_hash = sha256(prev_hash || canonical JSON of the entry's content). The first entry of a
tenant has prev_hash = 64 zeros. Editing, deleting or reordering a row breaks the chain at that row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def entry_content(entry: Any) -> dict[str, Any]:
    """What the hash covers. `reason` joined later: it is in the content only when an entry has one,
    so the entries written before it existed (and those without a reason) hash exactly as they did,
    while adding, changing or removing a reason breaks the chain like any other edit."""
    content = {
        "tenant_id": entry.tenant_id,
        "seq": entry.seq,
        "ts": entry.ts.isoformat(),
        "actor": entry.actor,
        "entity": entry.entity,
        "entity_key": entry.entity_key,
        "action": entry.action,
        "version": entry.version,
        "before": entry.before,
        "after": entry.after,
        "diff": entry.diff,
        "request_id": entry.request_id,
    }
    if entry.reason:
        content["reason"] = entry.reason
    return content


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
