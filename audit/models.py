"""The append-only audit log and the change-event outbox. Audit learns of changes only through the
signals of versioned tenant entities (`tenancy.entities`, `audit.receivers`)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from tenancy.entities import BulkWriteRefused
from tenancy.models import Tenant
from tenancy.scoping import TenantScopedManager


class AuditAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"
    RESTORE = "restore"
    ROLLBACK = "rollback"
    DELETE = "delete"
    # Kill switches (flags.killswitch, ADR "kill switches"): `kill`/`unkill` on each flag the switch
    # turns off or back; `engage`/`release` on the switch itself (entity `killswitch`, its one event).
    KILL = "kill"
    UNKILL = "unkill"
    ENGAGE = "engage"
    RELEASE = "release"
    # A change request's life (entity `change_request`, flags/change_requests.py).
    OPEN = "open"
    EDIT = "edit"
    APPROVE = "approve"
    REJECT = "reject"
    APPLY = "apply"
    # Scheduled rollouts (flags.rollouts): the plan made, a step applied by the worker, the last step,
    # and the plan paused, resumed or aborted (entity `flag`, the plan in `before`/`after`).
    ROLLOUT_SCHEDULE = "rollout_schedule"
    ROLLOUT_PROGRESS = "rollout_progress"
    ROLLOUT_COMPLETE = "rollout_complete"
    ROLLOUT_PAUSE = "rollout_pause"
    ROLLOUT_RESUME = "rollout_resume"
    ROLLOUT_ABORT = "rollout_abort"
    # A flag created with the key of an archived flag (`"reuse_key": true`, api.md): the archived flag
    # is renamed to a tombstone key and this entry, under the reused key, records it.
    REUSE_KEY = "reuse_key"
    # An archived flag removed past FLAG_ARCHIVE_RETENTION_DAYS (flags.retention), by `system:retention`:
    # the flag's last document in `before`, what went with it in `reason`. No change event (it was not served).
    PURGE = "purge"


class AuditEntryQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise BulkWriteRefused("Audit entries are append-only.")

    def delete(self) -> NoReturn:
        raise BulkWriteRefused("Audit entries are append-only.")


class AuditEntry(models.Model):
    """One change to one entity. Rows are never updated or deleted (a PostgreSQL trigger enforces it).

    `seq`, `prev_hash` and `entry_hash` chain each tenant's entries so that an edit behind the app's
    back is detectable (`manage.py verify_audit`).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    ts = models.DateTimeField()
    actor = models.CharField(max_length=200)
    entity = models.CharField(max_length=32)
    entity_key = models.CharField(max_length=128)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    version = models.PositiveIntegerField(null=True)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    diff = models.JSONField(default=dict)
    request_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001 (null = no request)
    # Why (api.md, Safe change: X-Change-Reason); "" = none given. In the hash chain when set (audit.chain).
    reason = models.CharField(max_length=500, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    objects = TenantScopedManager(AuditEntryQuerySet)
    all_tenants = models.Manager()

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-ts", "-seq"]
        constraints = [models.UniqueConstraint(fields=["tenant", "seq"], name="audit_tenant_seq_unique")]
        indexes = [
            models.Index(fields=["tenant", "ts"], name="audit_tenant_ts_idx"),
            models.Index(fields=["tenant", "entity", "entity_key"], name="audit_tenant_entity_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.entity} {self.entity_key} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise BulkWriteRefused("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise BulkWriteRefused("Audit entries are append-only.")


class ChangeEvent(models.Model):
    """The outbox of change events, written with the audit entry (audit.receivers).

    Its id is the event's cursor: every writer of a tenant's events holds the tenant's row lock from
    its insert to its commit, so within a tenant ids increase in commit order (ADR 0012). Rows older
    than `EVENT_RETENTION_DAYS` are pruned (`audit.outbox.prune_events`); the audit entries stay.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    ts = models.DateTimeField()
    entity = models.CharField(max_length=32)
    entity_key = models.CharField(max_length=128)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    version = models.PositiveIntegerField(null=True)
    ruleset_version = models.BigIntegerField(
        null=True,
        help_text="The tenant's ruleset version that includes this change (null: written before it was kept).",
    )
    audit_entry = models.OneToOneField(AuditEntry, on_delete=models.PROTECT, related_name="+")

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "id"], name="event_tenant_id_idx"),
            models.Index(fields=["tenant", "ruleset_version"], name="event_tenant_ruleset_idx"),
            models.Index(fields=["ts"], name="event_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity} {self.entity_key} v{self.version}"
