"""What the segment editor's condition builder needs from above: the admin's words for the rules
language and the attributes the tenant already uses, told by `flags` (which owns both) so that
`segments` imports no flags (the same inversion as `segments.usage`).
"""

from __future__ import annotations

from typing import Any, Protocol

from segments.selectors import segment_attributes


class ConditionWords(Protocol):
    def builder_context(self, tenant_id: int) -> dict[str, Any]:
        """`{"vocabulary": {...}, "attributes": [...]}` for one tenant."""
        ...


class _SegmentsOnly:
    """Until flags registers: no vocabulary (the editor stays JSON), the segments' own attributes."""

    def builder_context(self, tenant_id: int) -> dict[str, Any]:
        return {"vocabulary": None, "attributes": sorted(segment_attributes(tenant=tenant_id))}


_registered: list[ConditionWords] = []


def register_condition_words(words: ConditionWords) -> None:
    """Called once by flags in its `AppConfig.ready`."""
    if _registered and _registered[0] is not words:
        raise RuntimeError("The condition words are registered already.")
    _registered[:] = [words]


def condition_words() -> ConditionWords:
    return _registered[0] if _registered else _SegmentsOnly()
