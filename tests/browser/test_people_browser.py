"""An owner brings a new colleague into their tenant, who sets a password and signs in."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenancy.models import Membership
from tests.browser.conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("FLAGSVC_SCREENSHOTS")  # a directory: save each page a person sees, for review


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_owner__creates_a_person__who_sets_a_password_and_signs_in(
    page: Page, owner: Any, outsider: Any, tenant: Any, browser: Any, live_server: Any
) -> None:
    sign_in(page, "olivia")
    page.goto("/admin/tenancy/membership/")
    shot(page, "1-members")
    page.click(".object-tools a.addlink")
    expect(page.locator("h1")).to_have_text("Add membership")
    shot(page, "2-add-form")

    # A username that belongs to someone outside the owner's tenants is simply not free.
    page.fill("#id_username", "gus")
    page.select_option("#id_role", "editor")
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_have_text("This username is taken. Choose another username.")
    expect(page.locator("#content-main")).not_to_contain_text("globex")
    shot(page, "3-taken")

    page.fill("#id_username", "newcomer")
    page.fill("#id_email", "newcomer@example.com")
    page.click("input[name=_save]")
    expect(page.locator("h1")).to_have_text("newcomer can now set their password")
    expect(page.locator("#content-main")).to_contain_text("Editor (changes flags and segments)")
    link = page.input_value("#flagsvc-set-password-link")
    assert re.match(rf"{re.escape(live_server.url)}/admin/set-password/[^/]+/[^/]+/$", link), link
    shot(page, "4-link-once")
    page.click("text=Done: the link is sent")
    expect(page.locator("#result_list")).to_contain_text("newcomer")
    expect(page.locator("#result_list")).not_to_contain_text("gus")
    shot(page, "4b-members-after")

    # The newcomer, in their own browser, follows the link once.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
    newcomer = context.new_page()
    newcomer.goto(link)
    expect(newcomer.locator("#content-main")).to_contain_text("Welcome, newcomer")
    shot(newcomer, "5-set-password")
    newcomer.fill("#id_new_password1", PASSWORD)
    newcomer.fill("#id_new_password2", PASSWORD)
    newcomer.click("input[type=submit]")
    expect(newcomer.locator("#content-main")).to_contain_text("Your password is set")
    shot(newcomer, "6-password-set")
    newcomer.click("text=Sign in")
    newcomer.fill("#id_username", "newcomer")
    newcomer.fill("#id_password", PASSWORD)
    newcomer.click("input[type=submit]")
    expect(newcomer).to_have_url(re.compile(r"/admin/$"))
    expect(newcomer.locator("#content-main")).to_contain_text("Flags")
    shot(newcomer, "7-newcomer-home")

    newcomer.goto(link)
    expect(newcomer.locator("#flagsvc-link-invalid")).to_be_visible()
    shot(newcomer, "8-link-used")
    context.close()

    membership = Membership.all_tenants.get(user__username="newcomer")
    assert (membership.tenant_id, membership.role) == (tenant.pk, "editor")

    # The owner changes the newcomer's role, then removes them.
    page.goto(f"/admin/tenancy/membership/{membership.pk}/change/")
    shot(page, "9-change-role")
    page.select_option("#id_role", "viewer")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    page.goto(f"/admin/tenancy/membership/{membership.pk}/delete/")
    shot(page, "10-remove")
    page.click("input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("was deleted successfully")
    assert not Membership.all_tenants.filter(user__username="newcomer").exists()

    mine = Membership.all_tenants.get(user=owner)
    page.goto(f"/admin/tenancy/membership/{mine.pk}/delete/")
    expect(page.locator("h1")).to_have_text("olivia cannot be removed")
    expect(page.locator("#content")).to_contain_text("olivia is the last owner of acme")
    expect(page.locator("input[type=submit]")).to_have_count(0)
    shot(page, "11-last-owner")
