"""Webhooks and deliveries in the admin: the tenant's owners (and superusers), through the services."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from tests.admin.conftest import signed_in
from webhooks import secrets
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

URL = "https://93.184.215.14/hooks"


def secret_on(page: str) -> str:
    match = re.search(r'id="flagsvc-webhook-secret"[^>]*>(whsec_[A-Za-z0-9+/=]+)<', page)
    assert match, "the secret is on the page"
    return match.group(1)


def test_webhook_admin__owner_creates__secret_shown_once_and_stored_encrypted(owner, tenant):
    client = signed_in(owner)
    response = client.post(
        "/admin/webhooks/webhook/add/",
        {
            "tenant": tenant.pk,
            "url": URL,
            "events": "flag.*, segment.deleted",
            "active": "on",
            "description": "chat",
        },
    )
    assert response.status_code == 200, "rendered in place: a redirect would park the secret in a cookie"
    assert "no-store" in response["Cache-Control"]
    secret = secret_on(response.content.decode())
    stored = Webhook.objects.for_tenant(tenant).get()
    assert stored.events == ["flag.*", "segment.deleted"] and stored.description == "chat"
    assert secrets.decrypt(stored.secret_encrypted) == secret
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert secret not in client.get("/admin/webhooks/webhook/").content.decode()
    assert secret not in client.get(f"/admin/webhooks/webhook/{stored.pk}/change/").content.decode()
    assert AuditEntry.objects.for_tenant(tenant).get(entity="webhook").actor == f"user:{owner.username}"


def test_webhook_admin__private_url_and_unknown_event__errors_at_their_fields(owner, tenant):
    response = signed_in(owner).post(
        "/admin/webhooks/webhook/add/",
        {"tenant": tenant.pk, "url": "http://169.254.169.254/", "events": "flag.exploded", "active": "on"},
    )
    errors = response.context["adminform"].form.errors
    assert "link-local" in str(errors["url"]) and "flag.exploded" in str(errors["events"])
    assert not Webhook.objects.for_tenant(tenant).exists()


def test_webhook_admin__owner_edits_and_rotates_the_secret(owner, tenant):
    created = webhook_create(tenant=tenant, data={"url": URL, "events": ["flag.*"]})
    client = signed_in(owner)
    pk = created.webhook.pk
    edited = client.post(
        f"/admin/webhooks/webhook/{pk}/change/", {"url": URL, "events": "*", "description": "all of it"}
    )
    assert edited.status_code == 302, edited.content
    stored = Webhook.objects.for_tenant(tenant).get()
    assert (stored.events, stored.active, stored.description) == (["*"], False, "all of it")
    rotated = client.post("/admin/webhooks/webhook/", {"action": "rotate_secret", "_selected_action": [pk]})
    assert rotated.status_code == 200 and "no-store" in rotated["Cache-Control"]
    new_secret = secret_on(rotated.content.decode())
    assert new_secret != created.secret
    assert secrets.decrypt(Webhook.objects.for_tenant(tenant).get().secret_encrypted) == new_secret


def test_webhook_admin__editor_and_other_tenants_owner__no_access(editor, outsider, tenant):
    webhook = webhook_create(tenant=tenant, data={"url": URL, "events": ["flag.*"]}).webhook
    assert signed_in(editor).get("/admin/webhooks/webhook/").status_code == 403
    assert signed_in(outsider).get(f"/admin/webhooks/webhook/{webhook.pk}/change/").status_code in (403, 404)
    assert signed_in(editor).get("/admin/webhooks/webhookdelivery/").status_code == 403


def test_webhook_admin__owner_of_another_tenant__sees_none_of_ours(make_person, other_tenant, tenant):
    webhook = webhook_create(tenant=tenant, data={"url": URL, "events": ["flag.*"]}).webhook
    globex_owner = make_person("globex-owner", {other_tenant: "owner"})
    client = signed_in(globex_owner)
    assert URL not in client.get("/admin/webhooks/webhook/").content.decode()
    assert client.get(f"/admin/webhooks/webhook/{webhook.pk}/change/").status_code == 404


def test_delivery_admin__owner_redelivers_a_failed_delivery(owner, tenant):
    webhook = webhook_create(tenant=tenant, data={"url": URL, "events": ["flag.*"]}).webhook
    delivery = WebhookDelivery.objects.for_tenant(tenant).create(
        tenant=tenant,
        webhook=webhook,
        event_id=7,
        event_type="flag.updated",
        payload={"id": "7"},
        status=DeliveryStatus.FAILED,
        attempts=30,
        last_status_code=500,
        give_up_after=timezone.now(),
    )
    client = signed_in(owner)
    listed = client.get("/admin/webhooks/webhookdelivery/")
    assert listed.status_code == 200 and "flag.updated" in listed.content.decode()
    assert client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").status_code == 200
    response = client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None
