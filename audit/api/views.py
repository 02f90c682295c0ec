"""`GET /v1/audit` (api.md, Audit). There is no route that edits or deletes an entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditAction
from audit.selectors import audit_document, audit_list
from kernel.errors import Invalid
from kernel.pagination import LimitOffsetPage
from kernel.query_params import query_param
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import choice_param, text_param
from tenancy.schema import paginated

ENTITIES = (
    "flag",
    "segment",
    "membership",
    "tenant",
    "killswitch",
    "change_request",
    "automation",  # the rollout breaker
)


class AuditEntrySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ts = serializers.DateTimeField()
    actor = serializers.CharField()
    entity = serializers.CharField()
    entity_key = serializers.CharField()
    action = serializers.ChoiceField(AuditAction.values)
    version = serializers.IntegerField(allow_null=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    diff = serializers.JSONField()
    request_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="X-Change-Reason of the change, if given")


def _time_param(request: Request, name: str) -> datetime | None:
    """An ISO 8601 instant (a date means its midnight, no offset means UTC) that exists in UTC.

    Well-formed but impossible text (`0000-01-01`, `2026-02-30`, or `9999-12-31T23:59:59-01:00`,
    which is past year 9999 in UTC) is a 422 like any other that is not a timestamp.
    """
    raw = query_param(request, name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
        if value is None:
            day = parse_date(raw)
            value = datetime(day.year, day.month, day.day) if day else None
        if value is not None:
            value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        value = None
    if value is None:
        raise Invalid(
            {name: ["Use an ISO 8601 timestamp from year 1 to 9999 in UTC, e.g. 2026-11-22T10:00:00Z."]}
        )
    return value


class AuditListView(TenantAPIView):
    scope = "audit:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("entity", str, enum=list(ENTITIES)),
            OpenApiParameter("entity_key", str),
            OpenApiParameter("flag_key", str, description="alias of entity_key for entity=flag"),
            OpenApiParameter("actor", str, description="client:<client_id> or user:<username>"),
            OpenApiParameter("action", str, enum=list(AuditAction.values)),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 (or a date), inclusive"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="ISO 8601 (or a date), exclusive"),
        ],
        responses={200: paginated(AuditEntrySerializer, "PaginatedAuditEntryList")},
    )
    def get(self, request: Request) -> Response:
        """The tenant's audit entries, newest first: who changed what, before, after and the diff."""
        entity = choice_param(request, "entity", ENTITIES)
        entity_key = text_param(request, "entity_key")
        flag_key = text_param(request, "flag_key")
        if flag_key:
            entity = entity or "flag"
            entity_key = flag_key
        qs = audit_list(
            tenant=self.tenant,
            entity=entity,
            entity_key=entity_key,
            actor=text_param(request, "actor"),
            action=choice_param(request, "action", tuple(AuditAction.values)),
            since=_time_param(request, "since"),
            until=_time_param(request, "until"),
        )
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([audit_document(entry) for entry in page])
