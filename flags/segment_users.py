"""The live flags that use each segment, registered with `segments.usage` (segments imports no flags)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.selectors import flag_queryset, flags_by_segment


class LiveFlagsUsingSegments:
    def by_segment(self, tenant_id: int) -> dict[str, list[str]]:
        return flags_by_segment(tenant=tenant_id)

    def links(self, tenant_id: int, keys: list[str]) -> list[SafeString]:
        flags = flag_queryset(tenant=tenant_id).filter(key__in=keys).only("pk", "key")
        return [
            format_html('<a href="{}">{}</a>', reverse("admin:flags_flag_change", args=[flag.pk]), flag.key)
            for flag in flags
        ]


LIVE_FLAGS_USING_SEGMENTS = LiveFlagsUsingSegments()
