"""Flags and their stored versions. The document shapes are those of api.md, Flags."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import models
from django.db.models import Q

from kernel.documents import objects_in
from kernel.timefmt import iso
from tenancy.entities import VersionedQuerySet, VersionedTenantEntity
from tenancy.models import Tenant
from tenancy.scoping import TenantScopedManager

# The fields a caller may set; everything else in a flag document is bookkeeping.
FLAG_CONTENT_FIELDS: tuple[str, ...] = (
    "key",
    "name",
    "description",
    "type",
    "state",
    "variants",
    "off_variant",
    "targets",
    "rules",
    "default",
    "prerequisites",
    "bucket_by",
    "tags",
)
FLAG_READ_ONLY_FIELDS: tuple[str, ...] = ("version", "created_at", "updated_at", "archived_at", "usage")
# Attributes of a flag outside the engine's document (they change nothing evaluation serves, so the
# engine, the snapshot and the SDK never see them): set through the API and the admin like content,
# validated by flags.attributes, stored in FlagVersion documents and audited.
FLAG_ATTRIBUTE_FIELDS: tuple[str, ...] = ("kill_category", "lifecycle", "remove_after")


def segment_keys_in(value: Any) -> set[str]:
    """The segment keys that a flag's rules (or any part of them) refer to."""
    return {node["segment"] for node in objects_in(value) if isinstance(node.get("segment"), str)}


def variant_keys_of(variants: Any) -> list[Any]:
    """The keys of a flag's variants, in order."""
    return [v.get("key") for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []


def _iso_date(value: Any) -> str | None:
    """A stored date as the API shows it (`YYYY-MM-DD`); a string (a document not yet saved) as is."""
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


class FlagType(models.TextChoices):
    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    JSON = "json"


class FlagState(models.TextChoices):
    ON = "on"
    OFF = "off"


class FlagLifecycle(models.TextChoices):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class Flag(VersionedTenantEntity):
    entity_name = "flag"

    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=16, choices=FlagType.choices, default=FlagType.BOOLEAN)
    state = models.CharField(max_length=8, choices=FlagState.choices, default=FlagState.OFF)
    variants = models.JSONField(default=list)
    off_variant = models.CharField(max_length=128)
    targets = models.JSONField(default=dict)
    rules = models.JSONField(default=list)
    default = models.JSONField(null=True, blank=True)
    prerequisites = models.JSONField(default=list)
    bucket_by = models.CharField(max_length=128, default="id")
    tags = models.JSONField(default=list)
    tags_index = models.TextField(default="", editable=False, help_text="newline-framed tags for filtering")
    # What the ruleset check needs of every live flag, kept small beside the document (flags.integrity):
    variant_keys = models.JSONField(default=list, editable=False, help_text="the keys of `variants`")
    segment_refs = models.JSONField(
        default=list, editable=False, help_text="the segment keys `rules` refer to"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.CharField(max_length=200, blank=True, editable=False)
    # The kill switch that turns this flag off in an incident (flags.killswitch); "" = none.
    kill_category = models.CharField(max_length=64, blank=True, default="")
    # Lifecycle (api.md, Usage and lifecycle; usage.staleness): a temporary flag is expected to go,
    # by `remove_after` if given; a permanent one (a kill switch, an entitlement) is meant to stay.
    lifecycle = models.CharField(
        max_length=16, choices=FlagLifecycle.choices, default=FlagLifecycle.TEMPORARY
    )
    remove_after = models.DateField(null=True, blank=True)
    # Four eyes (flags/approvals.py): a protected flag changes only through an approved change request.
    # Not part of the engine's definition (like `tags`, it never changes what is served).
    protected = models.BooleanField(default=False)

    objects = TenantScopedManager(VersionedQuerySet)
    all_tenants = models.Manager.from_queryset(VersionedQuerySet)()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="flag_tenant_key_unique")]
        # The lists (API and admin) read live flags of one tenant in key order, filtered by state or type:
        # partial indexes over live flags only, in that order. Search indexes: migration 0005 (PostgreSQL).
        indexes = [
            models.Index(
                fields=["tenant", "key"], condition=Q(archived_at__isnull=True), name="flag_live_key_idx"
            ),
            models.Index(
                fields=["tenant", "state", "key"],
                condition=Q(archived_at__isnull=True),
                name="flag_live_state_idx",
            ),
            models.Index(
                fields=["tenant", "type", "key"],
                condition=Q(archived_at__isnull=True),
                name="flag_live_type_idx",
            ),
            models.Index(fields=["tenant", "kill_category"], name="flag_tenant_kill_category_idx"),
            # The purge of archived flags (flags.retention) finds them by age.
            models.Index(
                fields=["tenant", "archived_at"],
                condition=Q(archived_at__isnull=False),
                name="flag_archived_idx",
            ),
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def content(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in FLAG_CONTENT_FIELDS}

    def attributes(self) -> dict[str, Any]:
        """The flag's attributes outside the engine document, as the API shows them."""
        return {
            "kill_category": self.kill_category or None,
            "lifecycle": str(self.lifecycle),
            "remove_after": _iso_date(self.remove_after),
        }

    def apply_attributes(self, attributes: dict[str, Any]) -> None:
        if "kill_category" in attributes:
            self.kill_category = attributes["kill_category"] or ""
        if "lifecycle" in attributes:
            self.lifecycle = attributes["lifecycle"] or FlagLifecycle.TEMPORARY
        if "remove_after" in attributes:
            value = attributes["remove_after"]
            self.remove_after = date.fromisoformat(value) if isinstance(value, str) else value

    def apply_content(self, content: dict[str, Any]) -> None:
        for field in FLAG_CONTENT_FIELDS:
            if field in content:
                setattr(self, field, content[field])
        self.tags_index = "".join(f"\n{tag}" for tag in self.tags) + "\n" if self.tags else ""
        self.variant_keys = variant_keys_of(self.variants)
        self.segment_refs = sorted(segment_keys_in(self.rules))

    def to_document(self) -> dict[str, Any]:
        return {
            **self.content(),
            **self.attributes(),
            "protected": self.protected,  # four eyes (flags/approvals.py)
            "version": self.version,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "archived_at": iso(self.archived_at),
        }


class FlagVersion(models.Model):
    """The document of a flag as it was at one version (one row per version, written with it)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    document = models.JSONField()
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flag", "version"], name="flag_version_unique")]
        indexes = [models.Index(fields=["tenant", "flag", "-version"], name="flagversion_tenant_flag_idx")]
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"{self.flag_id} v{self.version}"


class PurgedFlagKey(models.Model):
    """The key of a purged flag (flags.retention): the flag's rows are gone, the key stays known as used,
    so that creating a flag with it again is 409 `conflict` unless the body says `"reuse_key": true`
    (api.md, Usage and lifecycle). Deleted when a new flag takes the key (audited `reuse_key`): while a
    row exists, no flag holds the key."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=128)
    purged_at = models.DateTimeField()
    archived_at = models.DateTimeField()
    last_version = models.PositiveIntegerField()

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="purged_flag_key_unique")]

    def __str__(self) -> str:
        return self.key

    def to_document(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "purged_at": iso(self.purged_at),
            "archived_at": iso(self.archived_at),
            "last_version": self.last_version,
        }


# Kill switches (flags.killswitch; ADR "kill switches") ------------------------------------------


class KillSwitch(models.Model):
    """An engaged kill switch of one category: the row exists while the switch is engaged.

    Its history (who engaged and released it, and why) is the audit log's (entity `killswitch`).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=64)
    engaged_at = models.DateTimeField()
    engaged_by = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "category"], name="killswitch_tenant_category_unique")
        ]
        ordering = ["category"]
        verbose_name_plural = "kill switches"

    def __str__(self) -> str:
        return self.category


class KilledFlag(models.Model):
    """A flag an engaged switch turned off, with the state to put back on release."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    switch = models.ForeignKey(KillSwitch, on_delete=models.CASCADE, related_name="killed")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="+")
    state_before = models.CharField(max_length=8, choices=FlagState.choices)
    killed_version = models.PositiveIntegerField(help_text="The flag's version the kill wrote.")

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["switch", "flag"], name="killedflag_switch_flag_unique")
        ]

    def __str__(self) -> str:
        return f"{self.switch_id}: {self.flag_id}"


# Four eyes (flags/approvals.py, flags/change_requests.py, docs/adr/0015) ------------------------------


class ChangeRequestStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    REJECTED = "rejected"


OPEN_STATUSES = (ChangeRequestStatus.PENDING, ChangeRequestStatus.APPROVED)


class ChangeRequestKind(models.TextChoices):
    """Which write service the request applies: the one whose gate opened it."""

    UPDATE = "update"
    ARCHIVE = "archive"
    RESTORE = "restore"
    ROLLBACK = "rollback"


class ChangeRequest(models.Model):
    """A proposed change of a protected flag, waiting for another person's approval (api.md, Safe change).

    `base` is the flag's document at `base_version` (what the author saw); `proposed` is the document the
    change makes (its definition, `protected` and `archived`); applying refuses (412) once the flag moved.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="change_requests")
    flag_key = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=ChangeRequestKind.choices)
    status = models.CharField(
        max_length=16, choices=ChangeRequestStatus.choices, default=ChangeRequestStatus.PENDING
    )
    base_version = models.PositiveIntegerField()
    base = models.JSONField()
    proposed = models.JSONField()
    rollback_version = models.PositiveIntegerField(null=True, blank=True)
    author = models.CharField(max_length=200)
    approvals = models.JSONField(default=list)
    decided_by = models.CharField(max_length=200, blank=True, default="")
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    reused: bool = False
    """Set by the gate: True when it replaced the proposal of this author's open request (not stored)."""

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-id"], name="cr_tenant_status_idx"),
            models.Index(fields=["tenant", "flag_key", "-id"], name="cr_tenant_flag_idx"),
        ]

    def __str__(self) -> str:
        return f"Change request #{self.pk} ({self.flag_key}, {self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


# Scheduled rollouts live in their own module (ADR 0016); imported here so Django registers them.
from flags.rollouts.models import AutomationBreaker, RolloutPlan  # noqa: E402, F401
