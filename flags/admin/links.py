"""Admin links to a tenant's segments and flags by key, for the views in words (one read of each)."""

from __future__ import annotations

from django.urls import reverse

from flags.admin.in_words import Links
from flags.selectors import flag_queryset
from segments.selectors import segment_queryset


def links_for(tenant_id: int) -> Links:
    segments = {
        key: reverse("admin:segments_segment_change", args=[pk])
        for key, pk in segment_queryset(tenant=tenant_id).values_list("key", "pk")
    }
    flags = {
        key: reverse("admin:flags_flag_change", args=[pk])
        for key, pk in flag_queryset(tenant=tenant_id, include_archived=True).values_list("key", "pk")
    }
    return Links.from_maps(segments, flags)
