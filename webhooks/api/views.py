"""`/v1/webhooks` (api.md, Webhooks), scope `admin`. Another tenant's webhook or delivery is 404."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.errors import NotFound
from kernel.pagination import LimitOffsetPage
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import (
    IF_MATCH_HEADER,
    WriteRateThrottle,
    choice_param,
    etag,
    expected_version,
    json_object,
)
from tenancy.schema import StrictBody, paginated
from webhooks import selectors, services
from webhooks.models import DeliveryStatus, Webhook
from webhooks.services import WebhookWithSecret


class WebhookSerializer(StrictBody, serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True)
    url = serializers.URLField(help_text="http(s); not on a loopback, private or link-local address")
    events = serializers.ListField(
        child=serializers.CharField(), help_text='e.g. ["flag.*", "segment.deleted"]'
    )
    active = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    version = serializers.IntegerField(
        read_only=True, help_text="up by one on each change (PATCH, a new secret); `ETag` names it"
    )
    secret_rotated_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: shown only in this answer")


class DeliverySerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    webhook_id = serializers.CharField()
    event_id = serializers.CharField(allow_null=True, help_text="null for a `flag.exposure` batch")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)


def _with_secret(created: WebhookWithSecret, status_code: int) -> Response:
    return Response(
        {**created.webhook.to_document(), "secret": created.secret},
        status=status_code,
        headers={"Cache-Control": "no-store", "ETag": etag(created.webhook.version)},
    )


def _webhook_response(webhook: Webhook) -> Response:
    return Response(webhook.to_document(), headers={"ETag": etag(webhook.version)})


class WebhookAPIView(TenantAPIView):
    scope = "admin"
    throttle_classes = (WriteRateThrottle,)

    def webhook(self, webhook_id: str) -> Webhook:
        found = selectors.webhook_get(tenant=self.tenant, webhook_id=int(webhook_id))
        if found is None:
            raise NotFound("No such webhook in this tenant.")
        return found


class WebhookCollectionView(WebhookAPIView):
    @extend_schema(responses={200: paginated(WebhookSerializer, "PaginatedWebhookList")})
    def get(self, request: Request) -> Response:
        """List the tenant's webhooks (never their secrets)."""
        paginator = LimitOffsetPage()
        page = (
            paginator.paginate_queryset(selectors.webhook_list(tenant=self.tenant), request, view=self) or []
        )
        return paginator.get_paginated_response([webhook.to_document() for webhook in page])

    @extend_schema(request=WebhookSerializer, responses={201: WebhookWithSecretSerializer})
    def post(self, request: Request) -> Response:
        """Create a webhook; the answer carries its signing secret, shown this once."""
        created = services.webhook_create(tenant=self.tenant, data=json_object(request))
        response = _with_secret(created, status.HTTP_201_CREATED)
        response["Location"] = f"/v1/webhooks/{created.webhook.pk}"
        return response


class WebhookDetailView(WebhookAPIView):
    @extend_schema(responses={200: WebhookSerializer})
    def get(self, request: Request, webhook_id: str) -> Response:
        """One webhook (never its secret), with its version as `ETag`."""
        return _webhook_response(self.webhook(webhook_id))

    @extend_schema(
        request=WebhookSerializer(partial=True),
        parameters=[IF_MATCH_HEADER],
        responses={200: WebhookSerializer},
    )
    def patch(self, request: Request, webhook_id: str) -> Response:
        """Change some of `url`, `events`, `active`, `description`; `If-Match` (or `version`) must name
        the current version, else 412."""
        body = json_object(request)
        webhook = services.webhook_update(
            tenant=self.tenant,
            webhook_id=self.webhook(webhook_id).pk,
            data=body,
            expected_version=expected_version(request, body),
        )
        return _webhook_response(webhook)

    @extend_schema(parameters=[IF_MATCH_HEADER], responses={204: None})
    def delete(self, request: Request, webhook_id: str) -> Response:
        """Delete a webhook with its delivery log; `If-Match` must name the current version, else 412."""
        services.webhook_delete(
            tenant=self.tenant,
            webhook_id=self.webhook(webhook_id).pk,
            expected_version=expected_version(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(WebhookAPIView):
    @extend_schema(request=None, responses={200: WebhookWithSecretSerializer})
    def post(self, request: Request, webhook_id: str) -> Response:
        """A new signing secret, shown this once; the old one stops signing at once."""
        rotated = services.webhook_rotate_secret(tenant=self.tenant, webhook_id=self.webhook(webhook_id).pk)
        return _with_secret(rotated, status.HTTP_200_OK)


class WebhookDeliveriesView(WebhookAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=DeliveryStatus.values)],
        responses={200: paginated(DeliverySerializer, "PaginatedWebhookDeliveryList")},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        """The webhook's deliveries, newest first, with the outcome of each one's latest attempt."""
        webhook = self.webhook(webhook_id)
        wanted = choice_param(request, "status", tuple(DeliveryStatus.values))
        qs = selectors.delivery_list(tenant=self.tenant, webhook=webhook, status=wanted)
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([delivery.to_document() for delivery in page])


class WebhookRedeliverView(WebhookAPIView):
    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        """Queue a failed delivery again (due now, a fresh retry window); 409 unless it failed."""
        delivery = services.delivery_redeliver(
            tenant=self.tenant, webhook_id=self.webhook(webhook_id).pk, delivery_id=int(delivery_id)
        )
        return Response(delivery.to_document(), status=status.HTTP_202_ACCEPTED)
