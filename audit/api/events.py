"""`GET /v1/events` (api.md, Change events): the tenant's change events as a Server-Sent Events stream
(`Accept: text/event-stream`) or polled as JSON (`Accept: application/json`).

Authentication, tenant, scope and errors are `TenantAPIView`'s, as on every `/v1` route, in whichever
process serves the request (gunicorn or the stream process, ADR 0012). Errors are always the JSON
error shape, whatever the client accepts.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.events import ENTITIES, TYPE_NAMES, event_document
from audit.outbox import MAX_CURSOR_DIGITS, events_after, resume_point
from audit.stream import async_events, stream_headers, sync_events
from kernel.errors import Invalid, NotAcceptable
from kernel.query_params import query_param, whole_number_param
from tenancy.api.base import TenantAPIView

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
LAST_EVENT_ID = "HTTP_LAST_EVENT_ID"
CURSOR = re.compile(rf"[0-9]{{1,{MAX_CURSOR_DIGITS}}}")
"""What `after` and `Last-Event-ID` must be: the schema's pattern, and the one check of it."""
CURSOR_SCHEMA = {"type": "string", "pattern": f"^{CURSOR.pattern}$"}
LAST_EVENT_ID_SCHEMA = {"type": "string", "pattern": f"^({CURSOR.pattern})?$"}
"""An empty `Last-Event-ID` is no cursor (the SSE spec's "no last event id"): `after`, else the present."""


class EventStreamRenderer(BaseRenderer):
    """Names `text/event-stream` for content negotiation; the stream itself is a streaming response."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        raise NotImplementedError("errors are rendered as JSON (EventsView.finalize_response)")


class AcceptHeaderOnly(DefaultContentNegotiation):
    """`Accept` alone chooses between the stream and JSON: no `?format=` (DRF would 404 an unknown one)."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)  # type: ignore[assignment]  # reads only this


class EventSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="the cursor: a decimal string, increasing in commit order")
    type = serializers.ChoiceField(list(TYPE_NAMES))
    tenant = serializers.CharField()
    entity = serializers.ChoiceField(list(ENTITIES))
    key = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    ruleset_version = serializers.CharField(
        allow_null=True, help_text="the tenant's ruleset version that includes the change"
    )
    actor = serializers.CharField()
    request_id = serializers.CharField(allow_null=True)
    ts = serializers.DateTimeField()


class EventPageSerializer(serializers.Serializer[Any]):
    events = EventSerializer(many=True)
    next = serializers.CharField(help_text="the cursor to send as `after` next time")
    reset = serializers.BooleanField(
        required=False,
        help_text="present (true) when `after` is older than the retention window or unknown: refetch "
        "the snapshot, then poll from `next`",
    )


def close_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def requested_cursor(request: Request) -> int | None:
    """`Last-Event-ID` (what a reconnecting EventSource sends), else `?after=`; None when neither."""
    raw = request.META.get(LAST_EVENT_ID, "").strip()
    name = "Last-Event-ID"
    if not raw:
        raw = query_param(request, "after") or ""
        name = "after"
    if not raw:
        return None
    if CURSOR.fullmatch(raw) is None:
        raise Invalid({name: [f"must be an event id (a cursor of decimal digits); got {raw[:24]!r}"]})
    return int(raw)


class EventsView(TenantAPIView):
    scope = "events:read"
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    content_negotiation_class = AcceptHeaderOnly

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response):  # JSON answers and every error, whatever was accepted
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", exclude=True),
            OpenApiParameter("after", CURSOR_SCHEMA, description="a cursor (an event's `id`)"),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1},
                description=f"JSON only: default {DEFAULT_LIMIT}, a larger value is capped at {MAX_LIMIT}",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                LAST_EVENT_ID_SCHEMA,
                location=OpenApiParameter.HEADER,
                description="a cursor; wins over `after` (a reconnecting EventSource sends it)",
            ),
        ],
        responses={
            (200, "application/json"): EventPageSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="`id: <cursor>`, `event: <type>`, `data: <the event JSON>` per event; "
                "`event: reset` first for a cursor older than the retention window; a comment line "
                "at least every 15 s",
            ),
        },
    )
    def get(self, request: Request) -> Any:
        """The tenant's change events after a cursor: streamed (SSE) or one page of JSON."""
        after = requested_cursor(request)
        if isinstance(request.accepted_renderer, EventStreamRenderer):
            start = resume_point(self.tenant.pk, after)
            if isinstance(request._request, ASGIRequest):
                content: Any = async_events(self.tenant.pk, start)
                # This request's thread and connection stay reserved while its stream is open;
                # the stream reads through the process's shared pool instead (audit.stream).
                close_connection()
            elif settings.EVENTS_STREAM_ON_WSGI:
                content = sync_events(self.tenant.pk, start)
            else:
                raise NotAcceptable(
                    "The event stream is served by the stream process (behind the proxy, this same URL; "
                    "with `make run`, port PORT + 1); here, poll with `Accept: application/json`."
                )
            response = StreamingHttpResponse(content, content_type="text/event-stream")
            for name, value in stream_headers().items():
                response[name] = value
            return response
        limit = whole_number_param(request, "limit", minimum=1, cap=MAX_LIMIT) or DEFAULT_LIMIT
        start = resume_point(self.tenant.pk, after)
        events = [] if start.reset else events_after(self.tenant.pk, start.cursor, limit)
        body: dict[str, Any] = {
            "events": [event_document(event) for event in events],
            "next": str(events[-1].pk if events else start.cursor),
        }
        if start.reset:
            body["reset"] = True
        return Response(body)
