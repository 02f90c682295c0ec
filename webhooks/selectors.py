"""Reads of webhooks and their deliveries, always of one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from tenancy.models import Tenant
from webhooks.models import Webhook, WebhookDelivery


def webhook_list(*, tenant: Tenant) -> QuerySet[Webhook]:
    return Webhook.objects.for_tenant(tenant).order_by("pk")


def webhook_get(*, tenant: Tenant, webhook_id: int) -> Webhook | None:
    return Webhook.objects.for_tenant(tenant).filter(pk=webhook_id).first()


def delivery_list(
    *, tenant: Tenant, webhook: Webhook, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """Newest first."""
    qs = WebhookDelivery.objects.for_tenant(tenant).filter(webhook=webhook)
    if status is not None:
        qs = qs.filter(status=status)
    return qs.order_by("-pk")
