"""The flag and segment editors as a product manager uses them: no JSON typed, errors where they were
made, the JSON view in step, and no serious accessibility problem (axe-core, in the same browser)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from flags.models import Flag
from segments.models import Segment
from segments.services import segment_delete
from tests.browser.conftest import sign_in
from tests.factories import make_flag, make_segment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_accessible(page: Page, what: str) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{what}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in bad
    )


def card(page: Page, index: int) -> Locator:
    return page.locator(f"#flagsvc-rule-{index}")


def add_chips(chips: Locator, *values: str) -> None:
    entry = chips.locator("input.flagsvc-chip-input")
    for value in values:
        entry.fill(value)
        entry.press("Enter")


def rules_json(page: Page) -> Any:
    return json.loads(page.input_value("#id_rules"))


@pytest.fixture
def tenant_in_use(tenant: Any, other_tenant: Any) -> Any:
    """acme has a segment and a flag whose rule compares `country`; globex compares its own attribute."""
    make_segment(tenant, "beta", name="Beta testers", included=["u-1"])
    make_flag(
        tenant,
        "old-checkout",
        rules=[
            {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
        ],
    )
    make_flag(
        other_tenant,
        "globex-secret",
        rules=[{"id": "x", "when": {"attr": "globex_only", "op": "exists"}, "serve": {"variant": "on"}}],
    )
    make_segment(other_tenant, "globex-vip", included=["g-1"])
    return tenant


def test_editor__builds_two_rules_a_split_and_a_20_percent_rollout__reorders__saves__without_typing_json(
    page: Page, editor: Any, tenant_in_use: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/flags/flag/add/")
    page.fill("#id_key", "checkout-redesign")
    page.fill("#id_name", "Checkout redesign")

    # A new boolean flag is safe: everyone else gets off until someone chooses a rollout.
    expect(page.locator("#flagsvc-summary")).to_contain_text("Everyone else: off.")
    page.check("#id_state input[value=on]")
    # The default rollout: 20 % on; with two variants the other follows to 80 %.
    page.locator("#flagsvc-variants input.flagsvc-pct-input").first.fill("20")
    expect(page.locator("#flagsvc-variants input.flagsvc-pct-input").nth(1)).to_have_value("80")
    expect(page.locator("#flagsvc-variants .flagsvc-split-total")).to_have_text("Total 100 % ✓")
    expect(page.locator("#flagsvc-summary")).to_contain_text("Everyone else: 20 % on, 80 % off.")

    # Rule 1: country is one of NL, BE — or plan is pro → on. The attributes offered are acme's own.
    page.click("#flagsvc-add-rule")
    options = page.locator("#flagsvc-attributes option")
    expect(options).to_have_count(2)
    assert sorted(options.evaluate_all("els => els.map(e => e.value)")) == ["country", "id"]
    first = card(page, 0)
    first.locator(".flagsvc-rule-id").fill("nl-be")
    first.locator(".flagsvc-attr").fill("country")
    expect(first.locator("select.flagsvc-op")).to_have_value("in")
    add_chips(first.locator(".flagsvc-chips"), "NL", "BE")
    first.locator("button.flagsvc-or").click()
    second_leaf = first.locator('[data-path="rules[0].when.any[1]"]')
    second_leaf.locator(".flagsvc-attr").fill("plan")
    second_leaf.locator("select.flagsvc-op").select_option(label="is")
    second_leaf.locator("input.flagsvc-text").fill("pro")
    first.locator("select.flagsvc-serve-variant").select_option("on")
    expect(first.locator(".flagsvc-rule-words")).to_have_text(
        "If country is one of NL, BE or plan is pro → serve on."
    )

    # Rule 2: users in the beta segment (picked, not typed) get a 30 / 70 split.
    page.click("#flagsvc-add-rule")
    second = card(page, 1)
    second.locator(".flagsvc-rule-id").fill("beta-split")
    second.locator(".flagsvc-cond-remove").click()  # no condition left: "everyone"
    second.locator("button.flagsvc-add-segment").click()
    picker = second.locator("select.flagsvc-segment-pick")
    assert picker.locator("option").all_inner_texts() == ["— choose a segment —", "beta — Beta testers"]
    picker.select_option("beta")
    second.locator("select.flagsvc-serve-mode").select_option("split")
    second.locator("input.flagsvc-pct-input").first.fill("30")
    expect(second.locator("input.flagsvc-pct-input").nth(1)).to_have_value("70")
    expect(second.locator(".flagsvc-rule-words")).to_have_text(
        "If user is in segment beta → serve 30 % on, 70 % off."
    )

    # Reorder with the keyboard: the split rule moves up and keeps the focus on its buttons.
    second.locator(".flagsvc-rule-up").focus()
    page.keyboard.press("Enter")
    expect(card(page, 0).locator(".flagsvc-rule-id")).to_have_value("beta-split")
    expect(card(page, 0).locator(".flagsvc-rule-down")).to_be_focused()
    assert [rule["id"] for rule in rules_json(page)] == ["beta-split", "nl-be"]

    # The JSON view is the same flag, and what is typed there comes back to the editor.
    page.click("#flagsvc-json-toggle")
    expect(page.locator("#id_rules")).to_be_visible()
    assert rules_json(page) == [
        {
            "id": "beta-split",
            "when": {"all": [{"segment": "beta"}]},
            "serve": {"distribution": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]},
        },
        {
            "id": "nl-be",
            "when": {
                "any": [
                    {"attr": "country", "op": "in", "value": ["NL", "BE"]},
                    {"attr": "plan", "op": "eq", "value": "pro"},
                ]
            },
            "serve": {"variant": "on"},
        },
    ]
    assert json.loads(page.input_value("#id_variants")) == [
        {"key": "on", "value": True, "weight": 20},
        {"key": "off", "value": False, "weight": 80},
    ]
    assert page.input_value("#id_default") == ""
    page.fill(
        "#id_variants",
        json.dumps(
            [{"key": "on", "value": True, "weight": 25}, {"key": "off", "value": False, "weight": 75}]
        ),
    )
    page.click("#flagsvc-json-toggle")
    expect(page.locator("#flagsvc-flag-builder")).to_be_visible()
    expect(page.locator("#flagsvc-variants input.flagsvc-pct-input").first).to_have_value("25")
    page.locator("#flagsvc-variants input.flagsvc-pct-input").first.fill("20")

    assert_accessible(page, "flag editor (add)")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    flag = Flag.objects.for_tenant(tenant_in_use).get(key="checkout-redesign")
    assert (flag.state, flag.default, [v["weight"] for v in flag.variants]) == ("on", None, [20, 80])
    assert [rule["id"] for rule in flag.rules] == ["beta-split", "nl-be"]

    # Edit the saved flag: drop BE from the first rule's list, duplicate it, move the copy last.
    rule = page.locator('[data-path="rules[1]"]')
    rule.get_by_role("button", name="Remove BE").click()
    rule.locator(".flagsvc-rule-duplicate").click()
    expect(card(page, 2).locator(".flagsvc-rule-id")).to_have_value("nl-be-copy")
    card(page, 2).locator(".flagsvc-rule-id").fill("nl-only")
    card(page, 0).locator(".flagsvc-rule-down").click()
    assert_accessible(page, "flag editor (change)")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    flag.refresh_from_db()
    assert [rule["id"] for rule in flag.rules] == ["nl-be", "beta-split", "nl-only"]
    assert flag.rules[0]["when"]["any"][0]["value"] == ["NL"]
    assert flag.version == 2


def test_segment_editor__builds_members_and_a_condition_without_json(
    page: Page, editor: Any, tenant_in_use: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/segments/segment/add/")
    page.fill("#id_key", "dutch-pros")
    included = page.locator('.flagsvc-chips[data-path="included"] input.flagsvc-chip-input')
    included.focus()
    page.evaluate(
        """() => { const input = document.activeElement; const data = new DataTransfer();
        data.setData('text', 'u-1\\nu-2, u-3'); input.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true})); }"""
    )
    expect(page.locator('.flagsvc-chips[data-path="included"] li.flagsvc-chip')).to_have_count(3)
    page.locator("#flagsvc-segment-condition button.flagsvc-add-condition").click()
    page.locator("#flagsvc-segment-condition .flagsvc-attr").fill("country")
    add_chips(page.locator("#flagsvc-segment-condition .flagsvc-chips"), "NL")
    page.locator("#flagsvc-segment-condition button.flagsvc-and").click()
    leaf = page.locator('[data-path="when.all[1]"]')
    leaf.locator(".flagsvc-attr").fill("app_version")
    leaf.locator("select.flagsvc-op").select_option(label="version is at least")
    leaf.locator("input.flagsvc-text").fill("2.10.0")
    # A nested group, turned into "not": staff are never in the segment.
    page.locator(
        '#flagsvc-segment-condition [data-path="when"] > .flagsvc-cond-children > .flagsvc-cond-adds .flagsvc-add-group'
    ).click()
    group = page.locator('[data-path="when.all[2]"]')
    group.locator("select.flagsvc-group-kind").select_option("not")
    staff = page.locator('[data-path="when.all[2].not"]')
    staff.locator(".flagsvc-attr").fill("email")
    staff.locator("select.flagsvc-op").select_option(label="ends with")
    staff.locator("input.flagsvc-text").fill("@acme.test")
    expect(page.locator("#flagsvc-segment-summary")).to_contain_text(
        "country is one of NL and app_version version is at least 2.10.0 and not email ends with @acme.test"
    )
    assert_accessible(page, "segment editor")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    segment = Segment.objects.for_tenant(tenant_in_use).get(key="dutch-pros")
    assert segment.included == ["u-1", "u-2", "u-3"]
    assert segment.when == {
        "all": [
            {"attr": "country", "op": "in", "value": ["NL"]},
            {"attr": "app_version", "op": "semver_gte", "value": "2.10.0"},
            {"not": {"attr": "email", "op": "ends_with", "value": "@acme.test"}},
        ]
    }


def test_editor__shows_the_servers_errors_at_the_controls_that_caused_them(
    page: Page, editor: Any, tenant_in_use: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/flags/flag/add/")
    page.fill("#id_key", "errors")
    # Two rules with the same id; the second picks the beta segment, which is deleted before the save.
    for index in (0, 1):
        page.click("#flagsvc-add-rule")
        card(page, index).locator(".flagsvc-rule-id").fill("same")
        card(page, index).locator(".flagsvc-attr").fill("country")
        add_chips(card(page, index).locator(".flagsvc-chips"), "NL")
    card(page, 1).locator("button.flagsvc-and").click()
    card(page, 1).locator('[data-path="rules[1].when.all[1]"] .flagsvc-cond-remove').click()
    card(page, 1).locator("button.flagsvc-add-segment").click()
    card(page, 1).locator("select.flagsvc-segment-pick").select_option("beta")
    segment_delete(tenant=tenant_in_use, key="beta", actor="user:someone-else")
    page.click("input[name=_continue]")

    expect(page.locator(".errornote")).to_be_visible()
    duplicate = page.locator('p.flagsvc-problem[data-problem-path="rules[1].id"]')
    expect(duplicate).to_contain_text("duplicate rule id 'same'")
    assert duplicate.evaluate("p => p.previousElementSibling.querySelector('input').value") == "same"
    unknown = page.locator('p.flagsvc-problem[data-problem-path="rules[1].when.all[1].segment"]')
    expect(unknown).to_contain_text("unknown segment 'beta'")
    picker = card(page, 1).locator("select.flagsvc-segment-pick")
    expect(picker).to_have_attribute("aria-invalid", "true")
    expect(picker).to_have_value("beta")
    assert not Flag.objects.for_tenant(tenant_in_use).filter(key="errors").exists()

    # A split whose weights are all 0, typed in the JSON view, comes back at the weights.
    page.click("#flagsvc-json-toggle")
    page.fill(
        "#id_rules",
        json.dumps(
            [
                {
                    "id": "zero",
                    "when": {"all": []},
                    "serve": {
                        "distribution": [{"variant": "on", "weight": 0}, {"variant": "off", "weight": 0}]
                    },
                }
            ]
        ),
    )
    page.click("input[name=_continue]")
    zero = page.locator('p.flagsvc-problem[data-problem-path="rules[0].serve.distribution"]')
    expect(zero).to_contain_text("0")
    expect(card(page, 0).locator(".flagsvc-split-total")).to_contain_text("must total 100 %")
    assert_accessible(page, "flag editor with errors")

    # The editor itself never saves a split that does not total 100 %: it says so and stays.
    card(page, 0).locator("input.flagsvc-pct-input").first.fill("30")
    expect(card(page, 0).locator(".flagsvc-split-total")).to_have_text("Total 100 % ✓")
    page.click("#flagsvc-add-variant")
    weights = page.locator("#flagsvc-variants input.flagsvc-pct-input")
    expect(weights).to_have_count(3)
    weights.nth(2).fill("10")
    expect(page.locator("#flagsvc-variants .flagsvc-split-total")).to_have_text(
        "Total 110 % — must total 100 %"
    )
    page.click("input[name=_continue]")
    expect(page.locator("#flagsvc-builder-alert")).to_contain_text("does not total 100 %")
    expect(weights.first).to_be_focused()
    assert not Flag.objects.for_tenant(tenant_in_use).filter(key="errors").exists()


def test_editor__changing_one_thing_leaves_everything_else_exactly_as_stored(
    page: Page, editor: Any, tenant: Any
) -> None:
    """Weights of 1 and 3 read as 25 % / 75 %, but only an edit of that split rewrites them."""
    flag = make_flag(
        tenant,
        "legacy",
        state="on",
        variants=[{"key": "on", "value": True, "weight": 1}, {"key": "off", "value": False, "weight": 3}],
        rules=[
            {
                "id": "half",
                "when": {"attr": "plan", "op": "eq", "value": "pro"},
                "serve": {"distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]},
            }
        ],
    )
    sign_in(page, "alice")
    page.goto(f"/admin/flags/flag/{flag.pk}/change/")
    expect(page.locator("#flagsvc-variants input.flagsvc-pct-input").first).to_have_value("25")
    expect(page.locator("#flagsvc-summary")).to_contain_text("Rule half: if plan is pro → 50 % on, 50 % off.")
    expect(page.locator("#flagsvc-summary")).to_contain_text("Everyone else: 25 % on, 75 % off.")
    card(page, 0).locator(".flagsvc-rule-description").fill("Pro plans, half of them")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    flag.refresh_from_db()
    assert [v["weight"] for v in flag.variants] == [1, 3]
    assert flag.rules[0]["serve"] == {
        "distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]
    }
    assert flag.rules[0]["description"] == "Pro plans, half of them"


def test_add_page__a_new_string_flag_gets_variants_of_its_type__value_inputs_fit_the_type(
    page: Page, editor: Any, tenant: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/flags/flag/add/")
    page.select_option("#id_type", "number")
    keys = page.locator("#flagsvc-variants input.flagsvc-key")
    expect(keys).to_have_count(2)
    assert keys.evaluate_all("els => els.map(e => e.value)") == ["control", "treatment"]
    expect(page.locator('#flagsvc-variants input[type=number][data-path="variants[1].value"]')).to_have_value(
        "1"
    )
    expect(page.locator("#flagsvc-off-variant")).to_have_value("control")
    page.select_option("#id_type", "json")
    expect(page.locator('#flagsvc-variants textarea[data-path="variants[0].value"]')).to_have_value("{}")


def test_editor__prerequisites_picked_from_the_tenants_flags__listed_users_as_chips(
    page: Page, editor: Any, tenant_in_use: Any
) -> None:
    sign_in(page, "alice")
    page.goto("/admin/flags/flag/add/")
    page.fill("#id_key", "needs-old")
    page.click("#flagsvc-add-prerequisite")
    picker = page.locator('select[data-path="prerequisites[0].flag"]')
    expect(picker).to_be_focused()
    assert picker.locator("option").all_inner_texts() == ["— choose a flag —", "old-checkout"]
    picker.select_option("old-checkout")
    expect(page.locator('[data-path="prerequisites[0].variants"] input[value=on]')).to_be_checked()
    add_chips(page.locator("#flagsvc-deny"), "u-9")
    add_chips(page.locator("#flagsvc-allow"), "u-1", "u-2")
    summary = page.locator("#flagsvc-summary")
    expect(summary).to_contain_text("Only if old-checkout gives on; otherwise off.")
    expect(summary).to_contain_text("1 listed user always gets off (deny list).")
    expect(summary).to_contain_text("2 listed users always get on (allow list).")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    flag = Flag.objects.for_tenant(tenant_in_use).get(key="needs-old")
    assert flag.prerequisites == [{"flag": "old-checkout", "variants": ["on"]}]
    assert (flag.targets["allow"], flag.targets["deny"]) == (["u-1", "u-2"], ["u-9"])
