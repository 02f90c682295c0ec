"""The rollout page in a real browser: a product manager schedules a plan with the date-time pickers,
sees it on the time line, the flag list's badge and the breaker (ADR 0016)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from flags.rollouts.models import RolloutPlan
from flags.rollouts.scheduler import run_due
from flags.rollouts.services import breaker_set
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = os.environ.get("FLAGSVC_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_rollout_page__schedule_with_pickers__time_line_badge_and_breaker(page: Page, owner, acme_flag):
    sign_in(page, "olivia")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/rollouts/")
    expect(page.locator("#flagsvc-breaker")).to_contain_text("Automation is running")
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    for i, (hours, percentage) in enumerate(((0, 5), (2, 25), (5, 100))):
        page.fill(f"input[name=step-{i}-at]", (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M"))
        page.fill(f"input[name=step-{i}-percentage]", str(percentage))
    page.select_option("select[name=variant]", "on")
    page.click("text=Schedule rollout")
    expect(page.locator(".messagelist")).to_contain_text("scheduled")
    expect(page.locator(".flagsvc-step")).to_have_count(3)

    plan = RolloutPlan.objects.for_tenant(acme_flag.tenant).get()
    run_due(start + timedelta(hours=2, minutes=1))  # the worker, late: steps 1 and 2 due at once
    breaker_set(tenant=acme_flag.tenant, engaged=True, reason="incident 42", actor="user:olivia")
    page.reload()
    expect(page.locator(".flagsvc-plan-status").first).to_have_text("running")
    expect(page.locator(".flagsvc-held")).to_contain_text("Held by the circuit breaker since")
    expect(page.locator(".flagsvc-plan-detail")).to_contain_text("overtaken")
    shot(page, "rollout-page")

    page.goto("/admin/flags/flag/")
    expect(page.locator(".flagsvc-plan-badge")).to_contain_text("on 25 % → 100 % at")
    shot(page, "flag-list")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/change/")
    expect(page.locator("text=See the plans and the time line")).to_be_visible()
    page.click(".object-tools >> text=Rollouts")
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/flags/flag/{acme_flag.pk}/rollouts/")
    assert plan.pk
