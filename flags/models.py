"""Flags and their stored versions. The document shapes are those of api.md, Flags."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

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
FLAG_READ_ONLY_FIELDS: tuple[str, ...] = ("version", "created_at", "updated_at", "archived_at")


def segment_keys_in(value: Any) -> set[str]:
    """The segment keys that a flag's rules (or any part of them) refer to."""
    found: set[str] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            segment = node.get("segment")
            if isinstance(segment, str):
                found.add(segment)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def variant_keys_of(variants: Any) -> list[Any]:
    """The keys of a flag's variants, in order."""
    return [v.get("key") for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []


class FlagType(models.TextChoices):
    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    JSON = "json"


class FlagState(models.TextChoices):
    ON = "on"
    OFF = "off"


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

    objects = TenantScopedManager(VersionedQuerySet)
    all_tenants = models.Manager.from_queryset(VersionedQuerySet)()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="flag_tenant_key_unique")]
        # The lists (API and admin) read live flags of one tenant in key order, filtered by state or type:
        # partial indexes over live flags only, in that order. Search indexes: migration 0002 (PostgreSQL).
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
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def content(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in FLAG_CONTENT_FIELDS}

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
