"""The control plane in a real browser: a product manager's day, a viewer's limits, a tenant's walls."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEntry
from flags.models import Flag
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RULE_NL = [{"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}]


def variants(on: int, off: int) -> str:
    return json.dumps(
        [{"key": "on", "value": True, "weight": on}, {"key": "off", "value": False, "weight": off}]
    )


def preview(page: Page, user_id: str, attributes: dict[str, str]) -> None:
    """Type the user id and text attributes into the panel's key/value rows, and run the preview."""
    page.fill("#flagsvc-preview-user", user_id)
    panel = page.locator("#flagsvc-preview")
    for index, (name, value) in enumerate(attributes.items()):
        if index >= panel.locator(".flagsvc-attr-row").count():
            panel.locator("[data-flagsvc-attr-add]").click()
        row = panel.locator(".flagsvc-attr-row").nth(index)
        row.locator("[name=_preview_attr_key]").fill(name)
        row.locator("[name=_preview_attr_value]").fill(value)
    page.click("#flagsvc-preview-run")
    expect(page.locator("#flagsvc-preview-result")).to_have_attribute("data-state", "done")


def test_editor__creates_a_flag_with_a_rule_and_a_20_percent_rollout__previews__saves__rolls_back(
    page: Page, editor: Any, tenant: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/flags/flag/add/")
    expect(page.locator("#id_tenant")).to_have_value(str(tenant.pk))
    page.fill("#id_key", "checkout-redesign")
    page.fill("#id_name", "Checkout redesign")
    page.check("#id_state input[value=on]")
    # The 20 % rollout and the rule are built with the flag editor, which writes the form's JSON fields.
    page.locator("#flagsvc-variants input.flagsvc-pct-input").first.fill("20")
    page.click("#flagsvc-add-rule")
    rule = page.locator("#flagsvc-rule-0")
    rule.locator(".flagsvc-rule-id").fill("nl")
    rule.locator(".flagsvc-attr").fill("country")
    rule.locator("select.flagsvc-op").select_option("eq")
    rule.locator("input.flagsvc-text").fill("NL")
    expect(rule.locator(".flagsvc-rule-words")).to_have_text("If country is NL → serve on.")
    assert json.loads(page.input_value("#id_rules")) == RULE_NL

    # Given the unsaved draft, a Dutch user matches the rule and the trace shows why.
    preview(page, "u-42", {"country": "NL"})
    expect(page.locator("#flagsvc-preview-variant")).to_have_text("on")
    expect(page.locator("#flagsvc-preview-reason")).to_have_text("RULE_MATCH (rule nl)")
    expect(page.locator("ol.flagsvc-trace")).to_contain_text("Rule nl: matches → on")
    expect(page.locator("ol.flagsvc-trace")).to_contain_text('country eq "NL" — the user has "NL"')
    expect(page.locator("#flagsvc-preview-sample")).to_contain_text("Sample of 1,000 users")
    assert not Flag.objects.for_tenant(tenant).exists(), "a preview saves nothing"

    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    flag = Flag.objects.for_tenant(tenant).get(key="checkout-redesign")
    assert (flag.version, flag.state, flag.default) == (1, "on", None)

    # When the rollout goes from 20 % to 50 %, the preview says how many sample users would move.
    page.locator("#flagsvc-variants input.flagsvc-pct-input").first.fill("50")
    preview(page, "u-7", {})
    sample = page.locator("#flagsvc-preview-sample").inner_text()
    moved = int(re.search(r"(\d+) of them would get a different variant", sample).group(1))
    # The sample varies country: the rule keeps NL users on, and 30 % of the others move off → on.
    assert 100 < moved < 400, sample
    expect(page.locator("#flagsvc-preview-directions")).to_contain_text(f"off → on: {moved} users")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")

    # The history shows both changes by alice; one click rolls back to version 1.
    page.click("a.historylink")
    entries = page.locator("section.flagsvc-entry")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("v2")
    expect(entries.first).to_contain_text("update by user:alice")
    expect(entries.first.locator("ul.flagsvc-changes")).to_contain_text("Variant on: 20 % → 50 %")
    page.click("text=Roll back to v1")
    expect(page.locator(".flagsvc-rollback-summary")).to_contain_text("Variant on: 50 % → 20 %")
    page.click("#flagsvc-rollback-confirm")
    expect(page.locator("ul.messagelist")).to_contain_text(
        "back to the content of version 1; it is now version 3"
    )
    expect(page.locator("#flagsvc-current-version")).to_have_text("3")
    expect(entries.first).to_contain_text("rollback by user:alice")

    flag = Flag.objects.for_tenant(tenant).get(key="checkout-redesign")
    assert (flag.version, [v["weight"] for v in flag.variants]) == (3, [20, 80])
    entries = AuditEntry.objects.for_tenant(tenant).filter(entity="flag").order_by("seq")
    actions = list(entries.values_list("action", "actor"))
    assert actions == [("create", "user:alice"), ("update", "user:alice"), ("rollback", "user:alice")]


def test_viewer__cannot_change_anything(page: Page, viewer: Any, acme_flag: Flag, live_server: Any) -> None:
    sign_in(page, "victor")
    page.goto(f"/admin/flags/flag/{acme_flag.pk}/change/")
    expect(page.locator("h1")).to_have_text("View flag")
    expect(page.locator("input[type=submit]")).to_have_count(0)
    expect(page.locator("#id_variants")).to_have_count(0)

    page.goto("/admin/flags/flag/")
    expect(page.locator("#result_list")).to_contain_text("checkout")
    expect(page.locator("select[name=action]")).to_have_count(0)
    expect(page.locator("a.addlink")).to_have_count(0)

    page.goto(f"/admin/flags/flag/{acme_flag.pk}/history/")
    expect(page.locator("section.flagsvc-entry")).to_have_count(1)
    expect(page.locator(".flagsvc-rollback")).to_have_count(0)

    # Forged POSTs with a valid CSRF token are refused all the same.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = [
        (f"/admin/flags/flag/{acme_flag.pk}/change/", {"state": "on", "variants": variants(100, 0)}),
        (f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"}),
        ("/admin/flags/flag/add/", {"tenant": str(acme_flag.tenant_id), "key": "sneaky", "state": "on"}),
        ("/admin/flags/flag/", {"action": "turn_on", "_selected_action": str(acme_flag.pk)}),
    ]
    statuses = [
        page.request.post(
            live_server.url + url,
            form={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": live_server.url + url},
            max_redirects=0,
        ).status
        for url, data in forged
    ]
    assert statuses[:3] == [403, 403, 403]
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.version, flag.state) == (1, "off")
    assert not Flag.objects.for_tenant(acme_flag.tenant).filter(key="sneaky").exists()


def test_member_of_tenant_b__cannot_see_tenant_a(
    page: Page, outsider: Any, acme_flag: Flag, globex_flag: Flag
) -> None:
    sign_in(page, "gus")
    page.goto("/admin/flags/flag/")
    expect(page.locator("#result_list")).to_contain_text("globex-secret")
    expect(page.locator("#result_list")).not_to_contain_text("checkout")

    page.fill("#searchbar", "checkout")
    page.press("#searchbar", "Enter")
    expect(page.locator("p.paginator")).to_contain_text("0 flags")
    expect(page.locator("#result_list")).to_have_count(0)

    for url in (
        f"/admin/flags/flag/{acme_flag.pk}/change/",
        f"/admin/flags/flag/{acme_flag.pk}/history/",
        f"/admin/flags/flag/{acme_flag.pk}/delete/",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 404, url

    page.goto("/admin/audit/auditentry/")
    expect(page.locator("#result_list")).to_contain_text("globex-secret")
    expect(page.locator("#result_list")).not_to_contain_text("checkout")
