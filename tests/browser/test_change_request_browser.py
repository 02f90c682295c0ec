"""Four eyes in a real browser: alice saves a protected flag, bob reviews, approves and applies it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from flags.models import Flag
from tests.browser.conftest import sign_in
from tests.factories import make_flag

pytestmark = pytest.mark.django_db(transaction=True)


def _shot(page: Page, name: str, tmp_path: Path) -> None:
    """`FLAGSVC_SCREENSHOTS=<dir>` keeps a screenshot of each page on the way (to look at them)."""
    folder = os.environ.get("FLAGSVC_SCREENSHOTS")
    if folder:
        page.screenshot(
            path=str(Path(folder) / f"{name}.png"), full_page=name != "cr-1-protected-change-form"
        )


def test_protected_flag_change_is_reviewed_approved_and_applied_by_another_person(
    page: Page, editor: Any, make_person: Any, tenant: Any, tmp_path: Path
) -> None:
    flag = make_flag(
        tenant, "checkout", name="Checkout redesign", state="off", protected=True, tags=["checkout"]
    )
    make_person("bob", {tenant: "editor"})
    sign_in(page, "alice")
    page.goto(f"/admin/flags/flag/{flag.pk}/change/")
    expect(page.locator(".messagelist")).to_contain_text("Protected: changes need approval")
    _shot(page, "cr-1-protected-change-form", tmp_path)
    page.check("#id_state input[value=on]")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("needs another person's approval")
    expect(page.locator("#flagsvc-cr-status")).to_have_text("pending")
    expect(page.locator("button[value=approve]")).to_have_count(0)
    _shot(page, "cr-2-review-as-author", tmp_path)

    page.context.clear_cookies()
    sign_in(page, "bob")
    page.goto("/admin/flags/changerequest/")
    _shot(page, "cr-3-list", tmp_path)
    page.locator("#result_list tbody tr").first.locator("a").first.click()  # the newest request
    expect(page.locator("ul.flagsvc-changes")).to_contain_text("State")
    _shot(page, "cr-4-review-as-reviewer", tmp_path)
    page.click("button[value=approve]")
    expect(page.locator("#flagsvc-cr-status")).to_have_text("approved")
    page.click("button[value=apply]")
    expect(page.locator("#flagsvc-cr-status")).to_have_text("applied")
    _shot(page, "cr-5-applied", tmp_path)
    assert Flag.objects.for_tenant(tenant).get(key="checkout").state == "on"
