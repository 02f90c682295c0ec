"""Purging archived flags past their retention (issue 15, item 6; docs/operations.md, Retention).

An archived flag is purged FLAG_ARCHIVE_RETENTION_DAYS (365) after it was archived, by the worker's
retention pass (`manage.py run_worker`) or by `manage.py purge_archived_flags`, one tenant at a time.

- Goes: the flag row, its stored versions, its (decided) change requests, its rollout plans, its
  kill-switch records, and the usage counts under its stored key.
- Stays: every audit entry (the chain is append-only). The purge adds one, action `purge`, actor
  `system:retention`, with the flag's last document in `before` and what went with it in `reason`.
  Change events and webhook deliveries already written stay until their own retention.
- The key stays reserved: a `PurgedFlagKey` row, so that creating a flag with it again is 409 `conflict`
  unless the body says `"reuse_key": true` (api.md, Usage and lifecycle; `flags.services.flag_create`).
- No change event (`flag.purged` does not exist): a purge changes nothing evaluation serves. An archived
  flag is not served, and no live flag can require it (`flag_archive` refuses to archive a prerequisite
  of a live flag; restoring a flag whose prerequisite was purged is 422, like any missing prerequisite).
- Held: a flag with an open change request (someone proposed to restore or change it) is not purged
  until the request is applied or rejected; the report names it.

Bounded: due flags are read FLAG_PURGE_BATCH at a time; each flag is purged in its own short transaction
under the tenant's lock (the lock every ruleset writer takes, so a restore or a `reuse_key` create never
races it); its rows go RETENTION_BATCH_ROWS per statement. Safe to run from several workers at once: a
flag already purged (or restored) by another is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditAction
from audit.receivers import set_audit_action
from flags.models import OPEN_STATUSES, ChangeRequest, Flag, FlagVersion, PurgedFlagKey
from flags.rollouts.models import RolloutPlan
from kernel.context import acting_as
from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.ruleset import lock_tenant
from usage.models import UsageCount, UsageSpan
from usage.services import delete_in_batches

logger = logging.getLogger("flagsvc.retention")

PURGE_ACTOR = "system:retention"


@dataclass(frozen=True)
class PurgedFlag:
    key: str  # the key the flag was created with (reserved by its PurgedFlagKey)
    stored_key: str  # the row's key: `~<id>~<key>` when the key had been reused already
    archived_at: datetime
    version: int
    versions: int
    change_requests: int
    rollouts: int
    usage_rows: int

    def to_document(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "stored_key": self.stored_key,
            "archived_at": iso(self.archived_at),
            "version": self.version,
            "removed": {
                "versions": self.versions,
                "change_requests": self.change_requests,
                "rollouts": self.rollouts,
                "usage_rows": self.usage_rows,
            },
        }


@dataclass
class PurgeReport:
    tenant: str
    cutoff: datetime
    dry_run: bool
    purged: list[PurgedFlag] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # keys kept for an open change request

    def to_document(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "archived_before": iso(self.cutoff),
            "dry_run": self.dry_run,
            "purged": [flag.to_document() for flag in self.purged],
            "held": self.held,
        }


def purge_cutoff(now: datetime) -> datetime:
    """Flags archived before this moment are due (FLAG_ARCHIVE_RETENTION_DAYS before `now`)."""
    return now - timedelta(days=settings.FLAG_ARCHIVE_RETENTION_DAYS)


def flags_due_for_purge(*, tenant: Tenant | int, now: datetime) -> QuerySet[Flag]:
    """The tenant's flags archived before the cutoff, oldest archive first."""
    return (
        Flag.objects.for_tenant(tenant)
        .filter(archived_at__lt=purge_cutoff(now))
        .order_by("archived_at", "pk")
    )


def original_key(flag: Flag) -> str:
    """The key a flag was created with: its own, or for a flag whose key was reused (renamed
    `~<id>~<key>`, `flags.services.tombstone_key`) the key of its stored versions."""
    if not flag.key.startswith("~"):
        return flag.key
    stored = FlagVersion.objects.for_tenant(flag.tenant_id).filter(flag=flag).order_by("-version").first()
    if stored is not None and isinstance(stored.document.get("key"), str):
        return str(stored.document["key"])
    return flag.key.split("~", 2)[-1]


def flags_purge_archived(
    *, tenant: Tenant, now: datetime | None = None, dry_run: bool = False, limit: int | None = None
) -> PurgeReport:
    """Purge the tenant's archived flags past their retention (at most `limit`; all by default).

    `dry_run` changes nothing and reports what a purge would remove, counts included.
    """
    now = now or timezone.now()
    report = PurgeReport(tenant=tenant.slug, cutoff=purge_cutoff(now), dry_run=dry_run)
    batch = settings.FLAG_PURGE_BATCH
    after: tuple[datetime | None, int] | None = None
    while limit is None or len(report.purged) < limit:
        due = flags_due_for_purge(tenant=tenant, now=now)
        if after is not None:  # keyset pagination: flags held or skipped are not read again
            due = due.filter(archived_at__gte=after[0]).exclude(archived_at=after[0], pk__lte=after[1])
        rows = list(due.values_list("pk", "archived_at")[:batch])
        for flag_id, archived_at in rows:
            if limit is not None and len(report.purged) >= limit:
                break
            outcome = _purge_one(tenant, flag_id, report.cutoff, now, dry_run=dry_run)
            if isinstance(outcome, PurgedFlag):
                report.purged.append(outcome)
            elif outcome is not None:
                report.held.append(outcome)
            after = (archived_at, flag_id)
        if len(rows) < batch:
            break
    if report.purged and not dry_run:
        logger.info(
            "archived flags purged",
            extra={"tenant": tenant.slug, "purged": len(report.purged), "held": len(report.held)},
        )
    return report


def _purge_one(
    tenant: Tenant, flag_id: int, cutoff: datetime, now: datetime, *, dry_run: bool
) -> PurgedFlag | str | None:
    """Purge one flag: what went, or the key when an open change request holds it, or None when it is
    no longer due (restored, or purged by another worker meanwhile)."""
    with acting_as(PURGE_ACTOR), transaction.atomic():
        lock_tenant(tenant.pk)
        flag = (
            Flag.objects.for_tenant(tenant)
            .select_for_update()
            .filter(pk=flag_id, archived_at__lt=cutoff)
            .first()
        )
        if flag is None or flag.archived_at is None:
            return None
        key = original_key(flag)
        requests = ChangeRequest.objects.for_tenant(tenant).filter(flag=flag)
        if requests.filter(status__in=OPEN_STATUSES).exists():
            return key
        versions = FlagVersion.objects.for_tenant(tenant).filter(flag=flag)
        plans = RolloutPlan.objects.for_tenant(tenant).filter(flag=flag)
        usage = UsageCount.objects.for_tenant(tenant).filter(flag_key=flag.key)
        if dry_run:
            return PurgedFlag(
                key=key,
                stored_key=flag.key,
                archived_at=flag.archived_at,
                version=flag.version,
                versions=versions.count(),
                change_requests=requests.count(),
                rollouts=plans.count(),
                usage_rows=usage.count(),
            )
        purged = PurgedFlag(
            key=key,
            stored_key=flag.key,
            archived_at=flag.archived_at,
            version=flag.version,
            versions=delete_in_batches(versions),
            change_requests=delete_in_batches(requests),
            rollouts=delete_in_batches(plans),
            usage_rows=delete_in_batches(usage),
        )
        delete_in_batches(UsageSpan.objects.for_tenant(tenant).filter(flag_key=flag.key))
        _reserve_key(tenant, flag, key, now)
        with acting_as(None, reason=_in_words(purged)):
            set_audit_action(flag, AuditAction.PURGE)
            # The entry goes under the key the flag's history is under (a reused key's flag was
            # renamed, its `reason` names the stored key); the row is deleted by its id.
            flag.key = key
            flag.delete()  # the audit receiver writes the `purge` entry (and no change event)
        return purged


def _reserve_key(tenant: Tenant, flag: Flag, key: str, now: datetime) -> None:
    """Keep the key known as used. When another flag holds it already (the key was reused), that flag
    reserves it in its turn; a PurgedFlagKey row always means that no flag holds the key."""
    if Flag.objects.for_tenant(tenant).filter(key=key).exclude(pk=flag.pk).exists():
        return
    assert flag.archived_at is not None
    PurgedFlagKey.objects.for_tenant(tenant).update_or_create(
        tenant=tenant,
        key=key,
        defaults={"purged_at": now, "archived_at": flag.archived_at, "last_version": flag.version},
    )


def _in_words(purged: PurgedFlag) -> str:
    """The purge's audit `reason`: why, and what went with the flag (at most 500 characters)."""
    days = settings.FLAG_ARCHIVE_RETENTION_DAYS
    stored = (
        f" (stored as {purged.stored_key}: its key was reused)" if purged.stored_key != purged.key else ""
    )
    text = (
        f"Archived on {purged.archived_at.date().isoformat()}{stored}, past the retention of {days:g} days "
        f"(FLAG_ARCHIVE_RETENTION_DAYS): removed the flag, {purged.versions} stored versions, "
        f"{purged.change_requests} change requests, {purged.rollouts} rollout plans and "
        f"{purged.usage_rows} usage rows; the audit entries stay and the key stays reserved."
    )
    return text[:500]


def purge_archived_flags_job(now: datetime) -> int:
    """The worker's retention job: purge every tenant's due flags; how many were purged."""
    tenant_ids = list(
        Flag.all_tenants.filter(archived_at__lt=purge_cutoff(now))
        .order_by("tenant_id")
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    purged = 0
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"):
        try:
            purged += len(flags_purge_archived(tenant=tenant, now=now).purged)
        except Exception:
            # One tenant's failure must not hold up the others' retention; retried next pass.
            logger.exception("purge of archived flags failed", extra={"tenant": tenant.slug})
    return purged
