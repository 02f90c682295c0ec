"""Reads of segments. Every function names its tenant."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import Q, QuerySet

from kernel import text_match
from kernel.documents import objects_in
from segments.models import Segment
from tenancy.models import Tenant


def segment_queryset(*, tenant: Tenant | int) -> QuerySet[Segment]:
    return Segment.objects.for_tenant(tenant).all().order_by("key")


def segment_get(*, tenant: Tenant | int, key: str) -> Segment | None:
    return segment_queryset(tenant=tenant).filter(key=key).first()


def segment_list(
    *, tenant: Tenant | int, key_prefix: str | None = None, q: str | None = None
) -> QuerySet[Segment]:
    qs = segment_queryset(tenant=tenant)
    if key_prefix:
        qs = qs.filter(text_match.starts_with("key", key_prefix))
    if q:
        qs = qs.filter(Q(key__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    return qs


def segment_keys(*, tenant: Tenant | int) -> set[str]:
    return set(segment_queryset(tenant=tenant).values_list("key", flat=True))


def segments_for_evaluation(*, tenant: Tenant | int) -> list[Segment]:
    return list(segment_queryset(tenant=tenant))


def attributes_in(value: Any) -> set[str]:
    """The user attributes that a condition (or any document holding conditions) compares."""
    return {node["attr"] for node in objects_in(value) if isinstance(node.get("attr"), str) and "op" in node}


def segment_attributes(*, tenant: Tenant | int) -> set[str]:
    """The attributes the tenant's segments compare (the admin's condition builders offer them)."""
    found: set[str] = set()
    for when in segment_queryset(tenant=tenant).values_list("when", flat=True):
        found |= attributes_in(when)
    return found


def segments_with_keys(*, tenant: Tenant | int, keys: Collection[str]) -> list[Segment]:
    """The segments among `keys` (one query on the tenant's key index); deleted ones are absent."""
    return list(segment_queryset(tenant=tenant).filter(key__in=list(keys))) if keys else []
