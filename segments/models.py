"""Segments: reusable sets of users (rules.md, Conditions)."""

from __future__ import annotations

from typing import Any

from django.db import models

from kernel.timefmt import iso
from tenancy.entities import VersionedQuerySet, VersionedTenantEntity
from tenancy.scoping import TenantScopedManager

SEGMENT_CONTENT_FIELDS: tuple[str, ...] = ("key", "name", "description", "included", "excluded", "when")


class Segment(VersionedTenantEntity):
    entity_name = "segment"

    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    included = models.JSONField(default=list)
    excluded = models.JSONField(default=list)
    when = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager(VersionedQuerySet)
    all_tenants = models.Manager.from_queryset(VersionedQuerySet)()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="segment_tenant_key_unique")]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def content(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in SEGMENT_CONTENT_FIELDS}

    def apply_content(self, content: dict[str, Any]) -> None:
        for field in SEGMENT_CONTENT_FIELDS:
            if field in content:
                setattr(self, field, content[field])

    def to_document(self) -> dict[str, Any]:
        return {
            **self.content(),
            "version": self.version,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
