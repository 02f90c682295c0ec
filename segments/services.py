"""Writes of segments, one function per use case; same transaction and audit rules as flags.

Each runs in a ruleset transaction (`tenancy.ruleset.ruleset_change`), so deleting a segment that a live
flag uses is refused by the same ruleset check, under the same per-tenant lock, as every flag write.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from flagsvc_sdk.engine import validate_segment

from kernel.context import acting_as
from kernel.documents import same_document
from kernel.errors import Conflict, Invalid, NotFound
from segments import selectors
from segments.models import SEGMENT_CONTENT_FIELDS, Segment
from tenancy.models import Tenant
from tenancy.ruleset import ruleset_change
from tenancy.versioning import check_version

READ_ONLY_FIELDS = ("version", "created_at", "updated_at")


def _content_of(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}


def _locked(tenant: Tenant, key: str) -> Segment:
    segment = selectors.segment_queryset(tenant=tenant).select_for_update().filter(key=key).first()
    if segment is None:
        raise NotFound(f"No segment {key!r} in this tenant.")
    return segment


def segment_create(*, tenant: Tenant, data: dict[str, Any], actor: str | None = None) -> tuple[Segment, bool]:
    content = validate_segment(_content_of(data))
    with acting_as(actor), ruleset_change(tenant) as change:
        segment = Segment(tenant=tenant)
        segment.apply_content(content)
        try:
            with transaction.atomic():
                segment.save()
        except IntegrityError:
            existing = selectors.segment_get(tenant=tenant, key=content["key"])
            if existing is None:
                raise
        else:
            change.segments.add(segment.key)
            return segment, True
    if not same_document(existing.content(), content):
        raise Conflict(
            f"A segment with key {content['key']!r} already exists with a different definition.",
            details={"key": content["key"], "version": existing.version},
        )
    return existing, False


def segment_update(
    *,
    tenant: Tenant,
    key: str,
    data: dict[str, Any],
    actor: str | None = None,
    expected_version: int | None = None,
    partial: bool = False,
) -> Segment:
    body = _content_of(data)
    with acting_as(actor), ruleset_change(tenant) as change:
        segment = _locked(tenant, key)
        check_version(segment, expected_version)
        if "key" in body and body["key"] != segment.key:
            raise Invalid({"key": [f"`key` cannot change (it is {segment.key!r})."]})
        base = segment.content() if partial else {"key": segment.key}
        content = validate_segment({**base, **body, "key": segment.key})
        if same_document(content, segment.content()):
            return segment
        segment.apply_content(content)
        segment.save()
        change.segments.add(segment.key)
        return segment


def segment_delete(
    *, tenant: Tenant, key: str, actor: str | None = None, expected_version: int | None = None
) -> None:
    """Hard delete, refused (409 `conflict`, `details.flags`) while a live flag refers to the segment."""
    with acting_as(actor), ruleset_change(tenant) as change:
        segment = _locked(tenant, key)
        check_version(segment, expected_version)
        segment.delete()
        change.segments.add(key)


__all__ = ["SEGMENT_CONTENT_FIELDS", "segment_create", "segment_delete", "segment_update"]
