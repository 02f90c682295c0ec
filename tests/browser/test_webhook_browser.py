"""Webhooks in a real browser: an owner adds one, copies its secret, reads the delivery log.

`FLAGSVC_SCREENSHOTS=<dir>` keeps a screenshot of each page on the way (to look at them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from webhooks import secrets
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("FLAGSVC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_owner__adds_a_webhook__copies_the_secret__reads_the_delivery_log(
    page: Page, owner: Any, tenant: Any, live_server: Any
) -> None:
    sign_in(page, owner.username)
    page.goto("/admin/webhooks/webhook/add/")
    page.fill("#id_url", "https://93.184.215.14/hooks/flags")
    page.fill("#id_events", "flag.*, segment.deleted")
    page.fill("#id_description", "Announce flag changes in #releases")
    shot(page, "webhook-add")
    page.click("input[name=_save]")
    secret = page.locator("#flagsvc-webhook-secret").inner_text()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret)
    shot(page, "webhook-secret-once")
    webhook = Webhook.objects.for_tenant(tenant).get()
    assert secrets.decrypt(webhook.secret_encrypted) == secret

    page.goto("/admin/webhooks/webhook/")
    expect(page.locator("#result_list")).to_contain_text("flag.*, segment.deleted")
    shot(page, "webhook-list")
    page.goto(f"/admin/webhooks/webhook/{webhook.pk}/change/")
    expect(page.locator("#id_events")).to_have_value("flag.*, segment.deleted")
    assert secret not in page.content()
    shot(page, "webhook-change")

    now = timezone.now()
    for n, (status, code, error) in enumerate(
        [
            (DeliveryStatus.SUCCEEDED, 200, ""),
            (DeliveryStatus.PENDING, 503, "HTTP 503: upstream unavailable"),
            (DeliveryStatus.FAILED, None, "timed out (no answer within 5 s)"),
        ]
    ):
        WebhookDelivery.objects.for_tenant(tenant).create(
            tenant=tenant,
            webhook=webhook,
            event_id=100 + n,
            event_type="flag.updated",
            payload={"id": str(100 + n), "type": "flag.updated"},
            status=status,
            attempts=n + 1,
            last_status_code=code,
            last_error=error,
            duration_ms=40 * (n + 1),
            next_attempt_at=now if status == DeliveryStatus.PENDING else None,
            give_up_after=now,
        )
    page.goto("/admin/webhooks/webhookdelivery/")
    expect(page.locator("#result_list")).to_contain_text("timed out")
    shot(page, "delivery-list")
    failed = WebhookDelivery.objects.for_tenant(tenant).get(status=DeliveryStatus.FAILED)
    page.goto(f"/admin/webhooks/webhookdelivery/{failed.pk}/change/")
    shot(page, "delivery-detail")
    page.goto("/admin/webhooks/webhookdelivery/")
    page.check(f"input[name=_selected_action][value='{failed.pk}']")
    page.select_option("select[name=action]", "redeliver")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Queued 1 delivery")
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING
