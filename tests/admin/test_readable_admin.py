"""The admin a product manager reads: words instead of JSON, the history and its rollback confirmation,
the preview's varied sample, the playground, the 403 page, empty lists, dates and the home page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from audit.models import AuditEntry
from flags.models import Flag
from flags.services import flag_archive, flag_update
from kernel.context import acting_as
from tests.admin.conftest import signed_in
from tests.factories import make_flag

RULE_BENELUX = {
    "id": "benelux",
    "when": {"any": [{"attr": "country", "op": "in", "value": ["NL", "BE"]}, {"segment": "beta"}]},
    "serve": {"distribution": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]},
}


def page_text(response: Any) -> str:
    html = response.content.decode()
    spaced = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return re.sub(r" ([,.:)])", r"\1", spaced)


# --- read-only pages in words -------------------------------------------------------------------------


def test_viewer__sees_the_flag_in_words_not_json(viewer, acme_flag, acme_segment):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"rules": [RULE_BENELUX]}, partial=True)
    response = signed_in(viewer).get(f"/admin/flags/flag/{acme_flag.pk}/change/")
    assert response.status_code == 200
    text = page_text(response)
    assert (
        "If any of these: country is one of NL, BE user is in segment beta → serve 30 % on, 70 % off" in text
    )
    assert "Everyone else: 20 % on, 80 % off" in text
    assert f'href="/admin/segments/segment/{acme_segment.pk}/change/"' in response.content.decode()
    assert '"weight"' not in text.split("As JSON, for developers")[0], "no JSON above the developers' box"


def test_archived_flag__editor_sees_it_in_words(editor, acme_flag):
    flag_archive(tenant=acme_flag.tenant, key="checkout", actor="system:test")
    text = page_text(signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/change/"))
    assert "Archived: not evaluated" in text
    assert "Everyone else: 20 % on, 80 % off" in text


def test_editor__still_gets_the_editor_not_the_words(editor, acme_flag):
    response = signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/change/")
    assert "flagsvc-words-box" not in response.content.decode()


def test_viewer__sees_the_segment_in_words(viewer, tenant):
    from tests.factories import make_segment

    segment = make_segment(
        tenant, "pros", included=["u-1"], when={"attr": "plan", "op": "in", "value": ["pro", "enterprise"]}
    )
    text = page_text(signed_in(viewer).get(f"/admin/segments/segment/{segment.pk}/change/"))
    assert "Always in: u-1 Anyone else for whom plan is one of pro, enterprise" in text
    assert re.search(r"Last change: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)


# --- history and rollback -------------------------------------------------------------------------------


def test_history__rule_change_in_words_before_and_after(editor, acme_flag, acme_segment):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"rules": [RULE_BENELUX]}, partial=True)
    text = page_text(signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/history/"))
    assert "added Rule benelux: benelux If any of these: country is one of NL, BE" in text
    assert re.search(r"v2 update by system:shell \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)


def test_history__shows_the_change_reason_of_each_change(editor, acme_flag):
    with acting_as("user:pm", reason="Incident 42: checkout errors"):
        flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    text = page_text(signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/history/"))
    assert "Reason: Incident 42: checkout errors" in text


def test_history__a_rollback_says_which_version_it_restored(editor, acme_flag):
    client = signed_in(editor)
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"name": "Renamed"}, partial=True)
    client.post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"})
    response = client.get(f"/admin/flags/flag/{acme_flag.pk}/history/")
    newest = response.context["items"][0]
    assert (newest.entry.action, newest.restored) == ("rollback", 1)
    assert "Restored the content of version 1." in page_text(response)


def test_history__no_rollback_offered_where_it_would_change_nothing(editor, acme_flag):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "off"}, partial=True)
    response = signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/history/")
    offered = {item.entry.version: item.can_roll_back for item in response.context["items"]}
    assert offered == {3: False, 2: True, 1: False}, "v1 has the current content; v3 is current"
    html = response.content.decode()
    assert "Roll back to v2" in html and "Roll back to v1" not in html


def test_rollback__get_is_a_confirmation_that_names_the_version_and_changes_nothing(editor, acme_flag):
    flag_update(
        tenant=acme_flag.tenant,
        key="checkout",
        data={
            "variants": [
                {"key": "on", "value": True, "weight": 50},
                {"key": "off", "value": False, "weight": 50},
            ]
        },
        partial=True,
    )
    response = signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/rollback/?version=1")
    assert response.status_code == 200
    text = page_text(response)
    assert "Roll checkout back to version 1?" in text
    assert "Variant on: 50 % → 20 %" in text
    assert 'id="flagsvc-rollback-confirm"' in response.content.decode()
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).version == 2, "GET changes nothing"


def test_rollback__confirmation_of_identical_content_offers_no_button(editor, acme_flag):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "off"}, partial=True)
    response = signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/rollback/?version=1")
    assert "Nothing: version 1 has the same content" in page_text(response)
    assert 'id="flagsvc-rollback-confirm"' not in response.content.decode()


def test_rollback__viewer_gets_the_403_page_naming_the_role(viewer, acme_flag):
    response = signed_in(viewer).get(f"/admin/flags/flag/{acme_flag.pk}/rollback/?version=1")
    assert response.status_code == 403
    assert "Rolling back a flag needs the editor or owner role in its tenant." in page_text(response)


# --- preview ---------------------------------------------------------------------------------------------


def _rows(*rows: tuple[str, str, str]) -> dict[str, list[str]]:
    return {
        "_preview_attr_key": [r[0] for r in rows],
        "_preview_attr_type": [r[1] for r in rows],
        "_preview_attr_value": [r[2] for r in rows],
    }


def test_preview__sample_varies_the_rule_attributes_and_says_which_way_users_move(editor, acme_flag):
    from tests.admin.test_flag_admin import RULE_NL, form_data

    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    acme_flag.refresh_from_db()
    draft = form_data(acme_flag, rules=[RULE_NL])
    response = signed_in(editor).post(
        f"/admin/flags/flag/{acme_flag.pk}/preview/",
        {**draft, "_preview_user_id": "u-42", **_rows(("country", "text", "NL"))},
    )
    body = json.loads(response.content)
    assert response.status_code == 200, body
    assert body["result"]["variant"] == "on"
    sample = body["sample"]
    assert sample["varied"] == ["country"]
    assert 0 < sample["variants"]["off"] < 1000, "not 1,000 copies of the typed NL user"
    assert sample["moves"] and all(m["from"] == "off" and m["to"] == "on" for m in sample["moves"])
    assert sum(m["count"] for m in sample["moves"]) == sample["changed"] > 0


def test_preview__multi_variant_moves_are_counted_per_pair(editor, tenant):
    from tests.admin.test_flag_admin import form_data

    flag = make_flag(
        tenant,
        "search",
        type="string",
        state="on",
        variants=[
            {"key": "a", "value": "a", "weight": 50},
            {"key": "b", "value": "b", "weight": 50},
            {"key": "c", "value": "c", "weight": 0},
        ],
        off_variant="a",
    )
    draft = form_data(
        flag,
        variants=[
            {"key": "a", "value": "a", "weight": 0},
            {"key": "b", "value": "b", "weight": 50},
            {"key": "c", "value": "c", "weight": 50},
        ],
    )
    response = signed_in(editor).post(
        f"/admin/flags/flag/{flag.pk}/preview/", {**draft, "_preview_user_id": "u"}
    )
    moves = {(m["from"], m["to"]) for m in json.loads(response.content)["sample"]["moves"]}
    # The split walks the variants in order: a's half of the buckets goes to b, b's half to c.
    assert moves == {("a", "b"), ("b", "c")}


# --- the playground --------------------------------------------------------------------------------------


def test_playground__every_flag_of_the_tenant_with_variant_and_why(viewer, acme_flag, tenant, globex_flag):
    flag_update(
        tenant=tenant,
        key="checkout",
        data={
            "state": "on",
            "rules": [
                {
                    "id": "nl",
                    "when": {"attr": "country", "op": "eq", "value": "NL"},
                    "serve": {"variant": "on"},
                }
            ],
        },
        partial=True,
    )
    make_flag(tenant, "dark-mode")
    query = {"tenant": tenant.pk, "user_id": "u-42", **_rows(("country", "text", "NL"))}
    response = signed_in(viewer).get("/admin/flags/playground/", query)
    assert response.status_code == 200
    rows = {r["key"]: (r["variant"], r["why"]) for r in response.context["results"]}
    assert rows == {"checkout": ("on", "rule nl matched"), "dark-mode": ("off", "the flag is off")}
    assert "globex-secret" not in response.content.decode()


def test_playground__another_tenant_is_404(viewer, other_tenant, globex_flag):
    response = signed_in(viewer).get("/admin/flags/playground/", {"tenant": other_tenant.pk, "user_id": "u"})
    assert response.status_code == 404


def test_playground__bad_row_is_a_message_not_an_error(viewer, acme_flag, tenant):
    response = signed_in(viewer).get(
        "/admin/flags/playground/", {"tenant": tenant.pk, "user_id": "u", **_rows(("age", "number", "x"))}
    )
    assert response.status_code == 200
    assert "Attributes: age: &#x27;x&#x27; is not a number" in response.content.decode()


def test_playground__evaluations_are_not_counted_as_traffic(viewer, acme_flag, tenant):
    from evaluation import metrics

    def total() -> float:
        return sum(
            s.value for m in metrics.EVALUATIONS.collect() for s in m.samples if s.name.endswith("_total")
        )

    before = total()
    signed_in(viewer).get("/admin/flags/playground/", {"tenant": tenant.pk, "user_id": "u"})
    assert total() == before


def test_playground__listed_under_feature_flags(viewer):
    apps = signed_in(viewer).get("/admin/").context["app_list"]
    flags_app = next(a for a in apps if a["app_label"] == "flags")
    assert [m["admin_url"] for m in flags_app["models"]][-1] == "/admin/flags/playground/"


# --- 403, empty lists, dates, home ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "needed"),
    [
        ("/admin/webhooks/webhook/", "Seeing webhooks needs the owner role"),
        ("/admin/tenancy/apiclient/add/", "Adding API clients needs the owner role"),
        ("/admin/flags/flag/add/", "Adding flags needs the editor role"),
    ],
)
def test_403__inside_the_admin_page_and_names_the_role(viewer, path, needed):
    response = signed_in(viewer).get(path)
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="site-name"' in html, "the admin's own page, with its header and navigation"
    text = page_text(response)
    assert needed in text
    assert "Your roles: viewer in acme." in text


def test_403__outside_the_admin_stays_plain(viewer, acme_flag):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    response = client.post(f"/admin/flags/flag/{acme_flag.pk}/change/", {})
    assert response.status_code == 403  # a CSRF refusal: Django's own page, not ours


def test_empty_list__says_what_to_do_next(editor, viewer, tenant):
    editor_page = signed_in(editor).get("/admin/flags/flag/").content.decode()
    assert "No flags yet." in editor_page and 'id="flagsvc-empty-add"' in editor_page
    assert "Add your first flag" in editor_page
    viewer_page = signed_in(viewer).get("/admin/flags/flag/").content.decode()
    assert "No flags yet." in viewer_page and "Add your first flag" not in viewer_page
    assert "An editor or owner of your tenant can add one." in viewer_page


def test_empty_search__offers_to_show_all(editor, acme_flag):
    page = signed_in(editor).get("/admin/flags/flag/", {"q": "no-such-flag"}).content.decode()
    assert "No flags match this search or these filters." in page


def test_dates__one_format_in_lists_and_pages(owner, acme_flag, acme_segment):
    client = signed_in(owner)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    audit_entry = AuditEntry.objects.for_tenant(acme_flag.tenant).first()
    for path in (
        "/admin/flags/flag/",
        "/admin/segments/segment/",
        "/admin/audit/auditentry/",
        f"/admin/audit/auditentry/{audit_entry.pk}/change/",
        f"/admin/flags/flag/{acme_flag.pk}/history/",
    ):
        text = page_text(client.get(path))
        assert re.search(stamp, text), path
        assert not re.search(r"[A-Z][a-z]{2}\. \d{1,2}, \d{4}", text), f"{path}: Django's 'Dec. 1, 2026'"


def test_home__signed_in_leads_to_the_admin_and_the_playground(editor):
    page = signed_in(editor).get("/").content.decode()
    assert 'id="home-admin"' in page and 'href="/admin/flags/playground/"' in page
