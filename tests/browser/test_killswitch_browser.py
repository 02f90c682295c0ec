"""Kill switches in a real browser: an owner engages one after its confirmation page, then releases it.

`FLAGSVC_SCREENSHOTS=<dir>` keeps a screenshot of each page on the way (to look at them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from flags.models import Flag
from tests.browser.conftest import sign_in
from tests.factories import make_flag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("FLAGSVC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_owner__engages_a_kill_switch_after_confirming__then_releases_it(page: Page, owner, tenant):
    for key, state in (("checkout-redesign", "on"), ("one-click-pay", "on"), ("pay-later", "off")):
        make_flag(tenant, key, name=key.replace("-", " ").capitalize(), state=state, kill_category="payments")
    make_flag(tenant, "search-v2", state="on", kill_category="search")
    sign_in(page, "olivia")

    page.goto("/admin/flags/killswitch/")
    shot(page, "killswitch-1-board")
    row = page.locator('tr[data-category="payments"]')
    expect(row).to_contain_text("not engaged")
    row.get_by_role("link", name="Engage kill switch…").click()

    expect(page.locator("#flagsvc-ks-turning-off")).to_contain_text("checkout-redesign")
    expect(page.locator("#flagsvc-ks-turning-off")).not_to_contain_text("pay-later")
    page.get_by_role("button", name="Engage kill switch payments").click()
    expect(page.locator(".errorlist")).to_contain_text("required")  # no reason: refused, nothing off
    assert Flag.objects.for_tenant(tenant).get(key="checkout-redesign").state == "on"
    shot(page, "killswitch-2-confirm-without-reason")

    page.fill("#id_reason", "INC-42: payment provider returns 500s")
    shot(page, "killswitch-3-confirm")
    page.get_by_role("button", name="Engage kill switch payments").click()

    expect(page).to_have_url(re.compile(r"/admin/flags/killswitch/$"))
    expect(page.locator(".messagelist")).to_contain_text("Turned off: checkout-redesign, one-click-pay")
    expect(page.locator('tr[data-category="payments"]')).to_contain_text("ENGAGED")
    shot(page, "killswitch-4-engaged")
    states = dict(Flag.objects.for_tenant(tenant).values_list("key", "state"))
    assert states == {
        "checkout-redesign": "off",
        "one-click-pay": "off",
        "pay-later": "off",
        "search-v2": "on",
    }

    flag = Flag.objects.for_tenant(tenant).get(key="checkout-redesign")
    page.goto(f"/admin/flags/flag/{flag.pk}/change/")
    expect(page.locator(".messagelist")).to_contain_text("Killed by switch payments")
    shot(page, "killswitch-5-flag-form")

    page.goto("/admin/flags/killswitch/")
    page.locator('tr[data-category="payments"]').get_by_role("link", name="Release…").click()
    page.fill("#id_reason", "provider fixed")
    shot(page, "killswitch-6-release")
    page.get_by_role("button", name="Release kill switch payments").click()
    expect(page.locator(".messagelist")).to_contain_text("Back on: checkout-redesign, one-click-pay")
    assert Flag.objects.for_tenant(tenant).get(key="checkout-redesign").state == "on"
    assert Flag.objects.for_tenant(tenant).get(key="pay-later").state == "off"

    page.goto(f"/admin/flags/flag/{flag.pk}/history/")
    expect(page.locator('section[data-action="kill"] .flagsvc-reason')).to_contain_text("INC-42")
    expect(page.locator('section[data-action="unkill"] .flagsvc-reason')).to_contain_text("provider fixed")
    shot(page, "killswitch-7-history")
