"""Webhooks (api.md, Webhooks): where a tenant's change events are POSTed, and the log of each delivery.

`WebhookDelivery` is also the worker's queue (ADR 0013): a pending row whose `next_attempt_at` has come
is claimed with `SELECT … FOR UPDATE SKIP LOCKED`, and claiming moves `next_attempt_at` a lease ahead,
so a worker killed in the middle of an attempt leaves a row that becomes due again when the lease ends.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from kernel.timefmt import iso as _iso
from tenancy.models import Tenant
from tenancy.scoping import TenantScopedManager


class Webhook(models.Model):
    entity_name: ClassVar[str] = "webhook"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    # The signing secret, encrypted with WEBHOOK_SECRET_KEYS (webhooks.secrets); never shown again.
    secret_encrypted = models.TextField()
    secret_rotated_at = models.DateTimeField()
    # The last change event (ChangeEvent.pk) the worker has turned into deliveries for this webhook.
    event_cursor = models.BigIntegerField(default=0)
    # Up by one on each change a caller makes (PATCH, a new secret): the `ETag` that `If-Match` names.
    # The worker's cursor moves without it.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "id"], name="webhook_tenant_id_idx")]

    def __str__(self) -> str:
        return self.url

    def to_document(self) -> dict[str, Any]:
        return {
            "id": str(self.pk),
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "description": self.description,
            "version": self.version,
            "secret_rotated_at": _iso(self.secret_rotated_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one webhook: its payload as it was when the event was fanned out, and the outcome
    of the latest attempt. Self-contained, so that pruning old events never loses a pending delivery.

    A batch of exposures (`webhooks.exposures`) is a delivery too, with no change event behind it:
    `event_id` is null, `message_id` its own `webhook-id`, and its payload (user ids) is scrubbed
    once it settles."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # The change event delivered; null for an exposure batch, which is no change event.
    event_id = models.BigIntegerField(null=True, blank=True)
    # The `webhook-id` of a delivery that has no change event (an exposure batch); "" otherwise.
    message_id = models.CharField(max_length=64, blank=True, default="")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Due time of the next attempt; while an attempt runs, the end of its lease. Null once settled.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries stop (status failed) after a failed attempt past this time (WEBHOOK_RETRY_HOURS).
    give_up_after = models.DateTimeField()
    # Who holds the current attempt: only that worker may record its outcome.
    lease_token = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event_id"], name="delivery_webhook_event_unique"),
            # A resent exposure batch (same batch id, same message id) is not delivered twice.
            models.UniqueConstraint(
                fields=["webhook", "message_id"],
                condition=~models.Q(message_id=""),
                name="delivery_webhook_message_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "webhook", "id"], name="delivery_tenant_webhook_idx"),
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            # The worker's retention pass (worker.prune_deliveries) finds settled rows by age.
            models.Index(
                fields=["last_attempt_at"],
                name="delivery_settled_idx",
                condition=models.Q(status__in=["succeeded", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.event_id or self.message_id} → webhook {self.webhook_id} ({self.status})"

    def to_document(self) -> dict[str, Any]:
        return {
            "id": str(self.pk),
            "webhook_id": str(self.webhook_id),
            "event_id": None if self.event_id is None else str(self.event_id),
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error or None,
            "next_attempt_at": _iso(self.next_attempt_at),
            "duration_ms": self.duration_ms,
            "created_at": _iso(self.created_at),
            "last_attempt_at": _iso(self.last_attempt_at),
        }
