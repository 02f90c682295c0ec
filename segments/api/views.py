"""`/v1/segments` (api.md, Segments)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.errors import NotFound
from kernel.http_caching import if_none_match_matches
from kernel.pagination import LimitOffsetPage
from segments import selectors, services
from segments.models import Segment
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import (
    IDEMPOTENCY_KEY_HEADER,
    IF_MATCH_HEADER,
    WriteRateThrottle,
    etag,
    expected_version,
    idempotent,
    json_object,
    text_param,
)
from tenancy.schema import StrictBody, paginated


class SegmentSerializer(StrictBody, serializers.Serializer[Any]):
    key = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    included = serializers.ListField(child=serializers.CharField(), required=False)
    excluded = serializers.ListField(child=serializers.CharField(), required=False)
    when = serializers.JSONField(required=False, allow_null=True, help_text="a condition (rules.md)")
    version = serializers.IntegerField(read_only=True)


class SegmentReplaceSerializer(SegmentSerializer):
    """`PUT /v1/segments/{key}`: the path names the segment, so the body may leave `key` out."""

    key = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", required=False)


def _segment_response(segment: Segment, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(segment.to_document(), status=status_code, headers={"ETag": etag(segment.version)})


class SegmentCollectionView(TenantAPIView):
    read_scope = "segments:read"
    write_scope = "segments:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(
        parameters=[OpenApiParameter("key_prefix", str), OpenApiParameter("q", str)],
        responses={200: paginated(SegmentSerializer, "PaginatedSegmentList")},
    )
    def get(self, request: Request) -> Response:
        """List the tenant's segments."""
        qs = selectors.segment_list(
            tenant=self.tenant, key_prefix=text_param(request, "key_prefix"), q=text_param(request, "q")
        )
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([segment.to_document() for segment in page])

    @extend_schema(
        request=SegmentSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={201: SegmentSerializer, 200: SegmentSerializer},
    )
    def post(self, request: Request) -> Response:
        """Create a segment; the same body again answers 200 with the stored segment.

        `Idempotency-Key`: as for `POST /v1/flags` (replayed 24 h; another request or one in flight: 409).
        """

        def create() -> Response:
            segment, created = services.segment_create(
                tenant=self.tenant, actor=self.actor, data=json_object(request)
            )
            response = _segment_response(segment, status.HTTP_201_CREATED if created else status.HTTP_200_OK)
            response["Location"] = f"/v1/segments/{segment.key}"
            return response

        return idempotent(request, self.tenant, self.principal, create)


class SegmentDetailView(TenantAPIView):
    read_scope = "segments:read"
    write_scope = "segments:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(responses={200: SegmentSerializer})
    def get(self, request: Request, key: str) -> Response:
        """One segment with its `ETag`; `If-None-Match` with the current version answers 304."""
        segment = selectors.segment_get(tenant=self.tenant, key=key)
        if segment is None:
            raise NotFound(f"No segment {key!r} in this tenant.")
        if if_none_match_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag(segment.version)):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(segment.version)})
        return _segment_response(segment)

    @extend_schema(
        request=SegmentReplaceSerializer, parameters=[IF_MATCH_HEADER], responses={200: SegmentSerializer}
    )
    def put(self, request: Request, key: str) -> Response:
        """Replace a segment's definition; `If-Match` must name the current version, else 412."""
        return self._update(request, key, partial=False)

    @extend_schema(
        request=SegmentSerializer, parameters=[IF_MATCH_HEADER], responses={200: SegmentSerializer}
    )
    def patch(self, request: Request, key: str) -> Response:
        """Change some fields of a segment; `If-Match` must name the current version, else 412."""
        return self._update(request, key, partial=True)

    def _update(self, request: Request, key: str, *, partial: bool) -> Response:
        body = json_object(request)
        segment = services.segment_update(
            tenant=self.tenant,
            key=key,
            data=body,
            actor=self.actor,
            expected_version=expected_version(request, body),
            partial=partial,
        )
        return _segment_response(segment)

    @extend_schema(parameters=[IF_MATCH_HEADER], responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        """Delete a segment; 409 `conflict` while a live flag uses it."""
        services.segment_delete(
            tenant=self.tenant, key=key, actor=self.actor, expected_version=expected_version(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
