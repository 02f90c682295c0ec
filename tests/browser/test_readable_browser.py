"""A product manager reads the admin in a real browser (Debian's Chromium): a viewer reads a flag in
words, an editor reads the history and rolls back through the confirmation, previews with key/value
rows, tries the playground; the flag list fits a 390 px phone; axe-core finds no serious or critical
violation on the flag list and the history."""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from flags.models import Flag
from flags.services import flag_update
from tests.browser.conftest import sign_in
from tests.factories import make_segment

RULES = [
    {
        "id": "benelux",
        "description": "Launch markets",
        "when": {"any": [{"attr": "country", "op": "in", "value": ["NL", "BE"]}, {"segment": "beta"}]},
        "serve": {"distribution": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]},
    },
    {"id": "pros", "when": {"attr": "plan", "op": "eq", "value": "pro"}, "serve": {"variant": "on"}},
]


def serious_violations(page: Page) -> list[str]:
    """axe-core (served from the installed package, not a CDN): serious and critical violations."""
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_viewer__reads_the_flag_in_words(page: Page, viewer: Any, acme_flag: Flag, tenant: Any) -> None:
    make_segment(tenant, "beta", included=["u-1"])
    flag_update(tenant=tenant, key="checkout", data={"state": "on", "rules": RULES}, partial=True)
    sign_in(page, "victor")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/change/")
    words = page.locator(".flagsvc-words")
    expect(words).to_contain_text("On: users get what the sections below say, in order.")
    rules = words.locator("ol.flagsvc-words-rules > li")
    expect(rules).to_have_count(2)
    expect(rules.nth(0)).to_contain_text("country is one of NL, BE")
    expect(rules.nth(0)).to_contain_text("user is in segment beta")
    expect(rules.nth(0)).to_contain_text("→ serve 30 % on, 70 % off")
    expect(rules.nth(1)).to_contain_text("If plan is pro → serve on")
    expect(words).to_contain_text("Everyone else: 20 % on, 80 % off")
    expect(page.locator("#id_rules")).to_have_count(0)
    expect(page.locator("details:has-text('As JSON') pre")).not_to_be_visible()
    words.get_by_role("link", name="beta").click()
    expect(page.locator("h1")).to_have_text("View segment")
    expect(page.locator(".flagsvc-words")).to_contain_text("Always in: u-1")
    assert serious_violations(page) == []


def test_editor__reads_the_history_in_words_and_rolls_back_through_the_confirmation(
    page: Page, editor: Any, acme_flag: Flag, tenant: Any
) -> None:
    rollout = [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}]
    flag_update(tenant=tenant, key="checkout", data={"variants": rollout}, partial=True, actor="user:alice")
    flag_update(tenant=tenant, key="checkout", data={"rules": RULES[1:]}, partial=True, actor="user:alice")
    sign_in(page, "alice")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/history/")
    entries = page.locator("section.flagsvc-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("Rule pros")
    expect(entries.nth(0)).to_contain_text("If plan is pro → serve on")
    expect(entries.nth(1)).to_contain_text("Variant on: 20 % → 50 %")
    expect(entries.nth(0).locator("time")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    assert serious_violations(page) == []

    entries.nth(2).get_by_role("link", name="Roll back to v1…").click()
    expect(page.locator("h1")).to_have_text("Roll checkout back to version 1?")
    summary = page.locator(".flagsvc-rollback-summary")
    expect(summary).to_contain_text("Variant on: 50 % → 20 %")
    expect(summary).to_contain_text("Rule pros")
    assert Flag.objects.for_tenant(tenant).get(pk=acme_flag.pk).version == 3, "nothing yet"
    assert serious_violations(page) == []
    page.click("#flagsvc-rollback-confirm")

    expect(page.locator("ul.messagelist")).to_contain_text(
        "back to the content of version 1; it is now version 4"
    )
    newest = page.locator("section.flagsvc-entry").first
    expect(newest).to_contain_text("Restored the content of version 1.")
    expect(newest).to_contain_text("Variant on: 50 % → 20 %")
    # v1 now has the current content: no rollback to it is offered.
    expect(page.locator("section.flagsvc-entry[data-version='1'] .flagsvc-rollback")).to_have_count(0)


def test_editor__previews_with_key_value_rows_and_reads_which_way_users_move(
    page: Page, editor: Any, acme_flag: Flag, tenant: Any
) -> None:
    flag_update(tenant=tenant, key="checkout", data={"state": "on"}, partial=True)
    sign_in(page, "alice")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/change/")
    panel = page.locator("#flagsvc-preview")
    rows = panel.locator(".flagsvc-attr-row")
    expect(rows).to_have_count(1)
    rows.nth(0).locator("[name=_preview_attr_key]").fill("country")
    rows.nth(0).locator("[name=_preview_attr_value]").fill("NL")
    panel.get_by_role("button", name="Add attribute").click()
    rows.nth(1).locator("[name=_preview_attr_key]").fill("beta")
    rows.nth(1).locator("[name=_preview_attr_type]").select_option("boolean")
    expect(rows.nth(1).locator("select[name=_preview_attr_value]")).to_have_value("true")
    panel.get_by_role("button", name="Add attribute").click()
    expect(rows).to_have_count(3)
    panel.get_by_role("button", name="Remove attribute 3").click()
    expect(rows).to_have_count(2)
    # A draft rule for NL, typed in the editor's JSON view (the builder has its own tests).
    page.click("#flagsvc-json-toggle")
    page.fill(
        "#id_rules",
        '[{"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}]',
    )
    page.click("#flagsvc-preview-run")
    expect(page.locator("#flagsvc-preview-result")).to_have_attribute("data-state", "done")
    expect(page.locator("#flagsvc-preview-variant")).to_have_text("on")
    expect(page.locator("#flagsvc-preview-sample")).to_contain_text("varied country")
    directions = page.locator("#flagsvc-preview-directions li")
    expect(directions.first).to_have_text(re.compile(r"^off → on: \d+ users$"))

    # Enter in a row added after the page loaded previews again; it never saves the flag.
    panel.get_by_role("button", name="Add attribute").click()
    rows.nth(2).locator("[name=_preview_attr_key]").fill("plan")
    rows.nth(2).locator("[name=_preview_attr_key]").press("Enter")
    expect(page.locator("#flagsvc-preview-result")).to_have_attribute("data-state", "done")
    expect(page).to_have_url(re.compile(rf"/admin/flags/flag/{acme_flag.pk}/change/$"))
    assert Flag.objects.for_tenant(tenant).get(pk=acme_flag.pk).version == 2, "nothing saved"


def test_viewer__plays_a_user_against_every_flag(
    page: Page, viewer: Any, acme_flag: Flag, tenant: Any
) -> None:
    flag_update(tenant=tenant, key="checkout", data={"state": "on", "rules": RULES[1:]}, partial=True)
    sign_in(page, "victor")
    page.get_by_role("link", name="Playground (try a user)").first.click()
    page.fill("#flagsvc-playground-user", "u-42")
    row = page.locator(".flagsvc-attr-row").first
    row.locator("[name=_preview_attr_key]").fill("plan")
    row.locator("[name=_preview_attr_value]").fill("pro")
    page.click("#flagsvc-playground-run")
    result = page.locator("#flagsvc-playground-results tr[data-flag=checkout]")
    expect(result).to_contain_text("on")
    expect(result).to_contain_text("rule pros matched")
    assert serious_violations(page) == []


def test_flag_list__readable_at_390_px_without_sideways_scrolling(
    page: Page, editor: Any, acme_flag: Flag, tenant: Any
) -> None:
    flag_update(tenant=tenant, key="checkout", data={"rules": RULES[1:]}, partial=True)
    sign_in(page, "alice")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/admin/flags/flag/")
    row = page.locator("#result_list tbody tr").first
    expect(row.locator(".field-key")).to_be_visible()
    expect(row.locator(".field-state_badge")).to_be_visible()
    expect(row.locator(".field-rollout")).to_be_visible()
    expect(row.locator(".field-last_evaluated")).to_be_hidden()
    widths = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            view: document.documentElement.clientWidth,
            results: document.querySelector('.results').scrollWidth,
            resultsBox: document.querySelector('.results').clientWidth,
        })"""
    )
    assert widths["page"] <= widths["view"], widths
    assert widths["results"] <= widths["resultsBox"], widths
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.reload()
    expect(row.locator(".field-last_evaluated")).to_be_visible()
    expect(row.locator(".field-plan")).to_be_visible()
    desktop = page.evaluate(
        "() => [document.querySelector('.results').scrollWidth, document.querySelector('.results').clientWidth]"
    )
    assert desktop[0] <= desktop[1], f"the list scrolls sideways at 1,280 px: {desktop}"
    assert serious_violations(page) == []
