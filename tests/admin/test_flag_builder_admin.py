"""What the flag and segment builders get from the server: each tenant's own choices, and the
engine's problems of a refused save at their exact paths (the builders show each at its control)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from flags.admin.builder import flag_choices, problems_at_paths
from flags.admin.forms import NEW_FLAG_INITIAL, FlagForm
from flags.selectors import attributes_in_use
from tests.admin.conftest import signed_in
from tests.admin.test_flag_admin import form_data
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db


def script_data(html: str, script_id: str) -> Any:
    match = re.search(rf'<script id="{script_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no #{script_id} on the page"
    return json.loads(match.group(1))


@pytest.fixture
def in_use(tenant: Any, other_tenant: Any) -> None:
    make_segment(tenant, "beta", name="Beta", when={"attr": "plan", "op": "in", "value": ["pro"]})
    make_flag(
        tenant,
        "checkout",
        variants=[{"key": "on", "value": True, "weight": 1}, {"key": "off", "value": False, "weight": 1}],
        rules=[
            {
                "id": "r",
                "when": {"any": [{"attr": "country", "op": "eq", "value": "NL"}, {"segment": "beta"}]},
                "serve": {"variant": "on"},
            }
        ],
        bucket_by="account_id",
    )
    make_segment(other_tenant, "globex-vip", when={"attr": "globex_secret_attr", "op": "exists"})
    make_flag(other_tenant, "globex-flag")


def test_attributes_in_use__are_the_tenants_own_from_rules_segments_and_bucket_by(
    in_use: None, tenant: Any, other_tenant: Any
) -> None:
    assert attributes_in_use(tenant=tenant) == ["id", "account_id", "country", "plan"]
    assert attributes_in_use(tenant=other_tenant) == ["id", "globex_secret_attr"]


def test_flag_choices__list_only_the_tenants_own_segments_and_live_flags_with_their_variants(
    in_use: None, tenant: Any
) -> None:
    choices = flag_choices(tenant)
    assert choices["segments"] == [{"key": "beta", "name": "Beta"}]
    assert choices["flags"] == [{"key": "checkout", "name": "", "variants": ["on", "off"]}]


def test_choices_route__answers_for_a_tenant_the_person_edits__404_for_another_or_for_a_viewer(
    in_use: None, editor: Any, viewer: Any, tenant: Any, other_tenant: Any
) -> None:
    url = "/admin/flags/flag/builder-choices/"
    alice = signed_in(editor)
    response = alice.get(url, {"tenant": tenant.pk})
    assert response.status_code == 200
    assert [s["key"] for s in response.json()["segments"]] == ["beta"]
    assert alice.get(url, {"tenant": other_tenant.pk}).status_code == 404
    for hostile in ("x", "²", "9" * 5000, ""):
        assert alice.get(url, {"tenant": hostile}).status_code == 404, hostile
    assert signed_in(viewer).get(url, {"tenant": tenant.pk}).status_code == 404

    seg_url = "/admin/segments/segment/builder-attributes/"
    words = alice.get(seg_url, {"tenant": tenant.pk}).json()
    assert words["attributes"] == ["id", "account_id", "country", "plan"]
    assert [o["op"] for o in words["vocabulary"]["operators"]][:3] == ["eq", "neq", "in"]
    assert alice.get(seg_url, {"tenant": other_tenant.pk}).status_code == 404


def test_add_page__embeds_the_words_and_the_tenants_choices_and_starts_safe(
    in_use: None, editor: Any, tenant: Any
) -> None:
    page = signed_in(editor).get("/admin/flags/flag/add/")
    data = script_data(page.content.decode(), "flagsvc-flag-builder-data")
    assert data["tenant"] == tenant.pk
    assert data["choices"]["attributes"] == ["id", "account_id", "country", "plan"]
    assert "globex" not in json.dumps(data)
    assert {o["op"]: o["words"] for o in data["vocabulary"]["operators"]}[
        "semver_gte"
    ] == "version is at least"
    assert data["problems"] == []
    # A new boolean flag serves off to everyone, even once turned on, until someone chooses.
    assert [(v["key"], v["weight"]) for v in NEW_FLAG_INITIAL["variants"]] == [("on", 0), ("off", 100)]
    assert NEW_FLAG_INITIAL["default"] is None and NEW_FLAG_INITIAL["state"] == "off"


def test_refused_save__hands_the_builder_each_problem_at_its_exact_path(
    in_use: None, editor: Any, tenant: Any
) -> None:
    rules = [
        {"id": "a", "when": {"all": []}, "serve": {"variant": "on"}},
        {
            "id": "a",
            "when": {"any": [{"attr": "country", "op": "in", "value": "NL"}, {"segment": "nope"}]},
            "serve": {"distribution": [{"variant": "on", "weight": 0}, {"variant": "off", "weight": 0}]},
        },
    ]
    response = signed_in(editor).post(
        "/admin/flags/flag/add/", form_data(tenant=str(tenant.pk), rules=rules, variants="[not json")
    )
    assert response.status_code == 200
    # The variants box does not parse, so the engine never ran: its path is the field's own.
    problems = script_data(response.content.decode(), "flagsvc-flag-builder-data")["problems"]
    assert [p["path"] for p in problems] == ["variants"]

    response = signed_in(editor).post("/admin/flags/flag/add/", form_data(tenant=str(tenant.pk), rules=rules))
    problems = script_data(response.content.decode(), "flagsvc-flag-builder-data")["problems"]
    by_path = {p["path"]: p["message"] for p in problems}
    assert set(by_path) == {
        "rules[1].id",
        "rules[1].when.any[0].value",
        "rules[1].when.any[1].segment",
        "rules[1].serve.distribution",
    }
    assert "duplicate rule id 'a'" in by_path["rules[1].id"]
    assert "unknown segment 'nope'" in by_path["rules[1].when.any[1].segment"]


def test_problems_at_paths__keeps_engine_paths_and_places_other_field_errors_at_the_field(
    editor: Any, tenant: Any
) -> None:
    form = FlagForm(data=form_data(tenant=str(tenant.pk), prerequisites="{"))
    form.fields["tenant"].queryset = type(tenant).objects.all()
    assert not form.is_valid()
    assert problems_at_paths(form) == [{"path": "prerequisites", "message": form.errors["prerequisites"][0]}]


def test_segment_refused_save__hands_the_builder_its_problems_at_their_paths(
    editor: Any, tenant: Any
) -> None:
    client: Client = signed_in(editor)
    response = client.post(
        "/admin/segments/segment/add/",
        {
            "tenant": str(tenant.pk),
            "key": "pros",
            "included": "u-1",
            "excluded": "",
            "when": json.dumps({"all": [{"attr": "plan", "op": "between", "value": [1]}, {"segment": "x"}]}),
        },
    )
    assert response.status_code == 200
    data = script_data(response.content.decode(), "flagsvc-segment-builder-data")
    assert [p["path"] for p in data["problems"]] == ["when.all[0].value", "when.all[1].segment"]
    assert data["vocabulary"]["groups"] == {"all": "all of", "any": "any of", "not": "not"}


def test_add_page_posted_with_another_tenants_id__embeds_nothing_of_that_tenant(
    in_use: None, editor: Any, other_tenant: Any
) -> None:
    response = signed_in(editor).post("/admin/flags/flag/add/", form_data(tenant=str(other_tenant.pk)))
    assert response.status_code == 200
    data = script_data(response.content.decode(), "flagsvc-flag-builder-data")
    assert data["tenant"] is None and data["choices"] is None
    assert "globex" not in response.content.decode()
