"""Flag usage in a real browser: the list's Last evaluated column and stale badge, the Stale filter,
and the flag page's served-variants chart. `FLAGSVC_SCREENSHOTS=<dir>` keeps screenshots."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from flags.models import Flag
from tests.browser.conftest import sign_in
from tests.factories import make_flag
from usage.services import Count, hour_of, usage_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TWO = {
    "state": "on",
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "off_variant": "off",
    "default": {"variant": "on"},
}


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("FLAGSVC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_flag_usage__list_badge_filter_and_chart(page: Page, editor, tenant):
    make_flag(tenant, "new-checkout", name="New checkout", **TWO)
    make_flag(tenant, "legacy-banner", name="Legacy banner")
    make_flag(tenant, "kill-payments", name="Kill payments", lifecycle="permanent", **TWO)
    Flag._base_manager.filter(tenant=tenant).update(created_at=timezone.now() - timedelta(days=50))
    now = hour_of(timezone.now())
    counts = []
    for day in range(30):
        hour = now - timedelta(days=day)
        counts.append(Count("new-checkout", "on", "PERCENTAGE_ROLLOUT", hour, 40 + 3 * (30 - day), hour))
        if day > 5:
            counts.append(Count("new-checkout", "off", "PERCENTAGE_ROLLOUT", hour, 60 - day, hour))
        counts.append(Count("new-checkout", "off", "OFF", hour, 5, hour))
        counts.append(Count("kill-payments", "off", "OFF", hour, 20, hour))
    usage_record(tenant_id=tenant.pk, batch_id="seed", counts=counts)
    sign_in(page, "alice")

    page.goto("/admin/flags/flag/")
    shot(page, "usage-1-list")
    row = page.locator("tr", has_text="legacy-banner")
    expect(row).to_contain_text("stale: never evaluated")
    expect(page.locator("tr", has_text="kill-payments")).not_to_contain_text("stale")

    page.goto("/admin/flags/flag/?stale=yes")
    expect(page.locator("#result_list")).to_contain_text("legacy-banner")
    expect(page.locator("#result_list")).not_to_contain_text("new-checkout")

    flag = Flag.all_tenants.get(tenant=tenant, key="new-checkout")
    page.goto(f"/admin/flags/flag/{flag.pk}/change/")
    chart = page.locator(".flagsvc-usage-chart svg")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 30
    expect(page.locator(".flagsvc-reasons")).to_contain_text("percentage rollout")
    page.locator(".field-served").scroll_into_view_if_needed()
    shot(page, "usage-2-flag")
