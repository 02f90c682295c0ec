"""Walk a tenant's audit chain and report the first link that does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from audit.chain import GENESIS, entry_content, entry_hash
from audit.models import AuditEntry
from tenancy.models import Tenant


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """`head_seq`/`head_hash` name the last verified entry: record them (with a backup, say) to detect a
    later truncation of the chain's end, which the chain alone cannot show."""

    checked: int
    broken: BrokenLink | None
    head_seq: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(*, tenant: Tenant) -> ChainReport:
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    for entry in AuditEntry.objects.for_tenant(tenant).order_by("seq").iterator(chunk_size=500):
        broken = None
        if entry.seq != expected_seq:
            broken = BrokenLink(entry.seq, entry.pk, f"expected seq {expected_seq}: an entry is missing")
        elif entry.prev_hash != expected_prev:
            broken = BrokenLink(entry.seq, entry.pk, "prev_hash does not match the previous entry")
        elif entry_hash(entry.prev_hash, entry_content(entry)) != entry.entry_hash:
            broken = BrokenLink(entry.seq, entry.pk, "content does not match its hash (edited)")
        if broken is not None:
            return ChainReport(checked, broken, expected_seq - 1, expected_prev)
        expected_prev = entry.entry_hash
        expected_seq += 1
        checked += 1
    return ChainReport(checked, None, expected_seq - 1, expected_prev)
