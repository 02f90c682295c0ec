"""Writes to webhooks: one service per use case, called by the API and the admin alike.

Each change is audited (entity `webhook`, keyed by its id; actions create, update, delete, and update for a
secret rotation, whose document shows only the new `secret_rotated_at`): where a tenant's data is sent is a
security decision worth a tamper-evident record. It writes no change event: nothing evaluation serves changes.
The secret never enters an audit document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditAction, ChangeEvent
from audit.records import audit_record
from kernel.errors import Conflict, Invalid, NotFound
from tenancy.models import Tenant
from tenancy.versioning import check_version
from webhooks import secrets
from webhooks.destinations import DestinationRefused, check_url
from webhooks.exposures import EXPOSURE
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.patterns import pattern_errors

FIELDS = ("url", "events", "active", "description")
ENTITY = "webhook"


@dataclass(frozen=True)
class WebhookWithSecret:
    webhook: Webhook
    secret: str


def webhook_create(*, tenant: Tenant, data: dict[str, Any]) -> WebhookWithSecret:
    """A new webhook; its signing secret is in the answer and nowhere else in clear. It hears the
    events that happen from now on (its cursor starts at the tenant's latest event)."""
    clean = _validated(data, partial=False)
    secret = secrets.new_secret()
    with transaction.atomic():
        latest = ChangeEvent.objects.for_tenant(tenant).aggregate(latest=Max("pk"))["latest"] or 0
        webhook = Webhook.objects.for_tenant(tenant).create(
            tenant=tenant,
            secret_encrypted=secrets.encrypt(secret),
            secret_rotated_at=timezone.now(),
            event_cursor=latest,
            **clean,
        )
        _audit(webhook, AuditAction.CREATE, None, webhook.to_document())
    return WebhookWithSecret(webhook=webhook, secret=secret)


def webhook_update(
    *, tenant: Tenant, webhook_id: int, data: dict[str, Any], expected_version: int | None = None
) -> Webhook:
    """Change some of `url`, `events`, `active`, `description` (PATCH): a new version when any of them
    changes. A stale `expected_version` (`If-Match`) is a 412 and changes nothing."""
    clean = _validated(data, partial=True)
    with transaction.atomic():
        webhook = _locked(tenant, webhook_id)
        check_version(webhook, expected_version)
        before = webhook.to_document()
        for name, value in clean.items():
            setattr(webhook, name, value)
        if _changed(before, webhook.to_document()):
            webhook.version += 1
            webhook.save()
            _audit(webhook, AuditAction.UPDATE, before, webhook.to_document())
    return webhook


def webhook_delete(*, tenant: Tenant, webhook_id: int, expected_version: int | None = None) -> None:
    """Delete a webhook and its delivery log; pending deliveries are dropped with it. A stale
    `expected_version` (`If-Match`) is a 412 and deletes nothing."""
    with transaction.atomic():
        webhook = _locked(tenant, webhook_id)
        check_version(webhook, expected_version)
        before = webhook.to_document()
        WebhookDelivery.objects.for_tenant(tenant).filter(webhook=webhook).delete()
        webhook.delete()
        webhook.pk = int(before["id"])
        _audit(webhook, AuditAction.DELETE, before, None)


def webhook_rotate_secret(*, tenant: Tenant, webhook_id: int) -> WebhookWithSecret:
    """A new signing secret, effective for every attempt from now on; the old one stops at once."""
    secret = secrets.new_secret()
    with transaction.atomic():
        webhook = _locked(tenant, webhook_id)
        before = webhook.to_document()
        webhook.secret_encrypted = secrets.encrypt(secret)
        webhook.secret_rotated_at = timezone.now()
        webhook.version += 1
        webhook.save(update_fields=["secret_encrypted", "secret_rotated_at", "version", "updated_at"])
        _audit(webhook, AuditAction.UPDATE, before, webhook.to_document())
    return WebhookWithSecret(webhook=webhook, secret=secret)


def delivery_redeliver(*, tenant: Tenant, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """Queue a failed delivery again, due now, with a fresh retry window. Pending: 409 (it is queued);
    succeeded: 409 too (the receiver has it; redelivering is for deliveries that never arrived)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_tenant(tenant)
            .select_for_update()
            .filter(webhook_id=webhook_id, pk=delivery_id)
            .first()
        )
        if delivery is None:
            raise NotFound("No such delivery of this webhook in this tenant.")
        if delivery.event_type == EXPOSURE:
            raise Conflict(
                "An exposure delivery cannot be redelivered: its exposures are not kept once it settles.",
                details={"event_type": delivery.event_type},
            )
        if delivery.status != DeliveryStatus.FAILED:
            raise Conflict(
                f"Only a failed delivery can be redelivered; this one is {delivery.status}.",
                details={"status": delivery.status},
            )
        now = timezone.now()
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.give_up_after = now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
        delivery.lease_token = None
        delivery.save(update_fields=["status", "next_attempt_at", "give_up_after", "lease_token"])
    return delivery


def _locked(tenant: Tenant, webhook_id: int) -> Webhook:
    webhook = Webhook.objects.for_tenant(tenant).select_for_update().filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound("No such webhook in this tenant.")
    return webhook


def _validated(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    read_only = {"id", "version", "secret_rotated_at", "created_at", "updated_at"}
    unknown = sorted(set(data) - set(FIELDS) - read_only)
    for name in unknown:
        errors[name] = ["Unknown field."]
    clean: dict[str, Any] = {}
    if "url" in data or not partial:
        url = data.get("url")
        if not isinstance(url, str) or not url.strip():
            errors["url"] = ["An http:// or https:// URL."]
        else:
            try:
                check_url(url.strip())
                clean["url"] = url.strip()
            except DestinationRefused as error:
                errors["url"] = [str(error)]
    if "events" in data or not partial:
        problems = pattern_errors(data.get("events"))
        if problems:
            errors["events"] = problems
        else:
            clean["events"] = list(dict.fromkeys(data["events"]))
    if "active" in data:
        if not isinstance(data["active"], bool):
            errors["active"] = ["true or false."]
        else:
            clean["active"] = data["active"]
    if "description" in data:
        description = data["description"]
        if description is None:
            description = ""
        if not isinstance(description, str) or len(description) > 500:
            errors["description"] = ["A string of at most 500 characters."]
        else:
            clean["description"] = description
    if errors:
        raise Invalid(errors)
    return clean


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(before[name] != after[name] for name in FIELDS)


def _audit(
    webhook: Webhook, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    def document(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if doc is None else {k: v for k, v in doc.items() if k != "updated_at"}

    audit_record(
        tenant_id=webhook.tenant_id,
        entity=ENTITY,
        key=str(webhook.pk),
        action=action,
        before=document(before),
        after=document(after),
    )
