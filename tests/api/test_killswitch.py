"""/v1/killswitch and a flag's `kill_category` (api.md, Safe change: Kill switch; ADR kill switches)."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry, ChangeEvent
from evaluation.cache import RulesetCache
from flags.models import Flag
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

WHY = {"HTTP_X_CHANGE_REASON": "payments provider outage INC-42"}
USER = {"user": {"id": "u-1"}}


def flag(api, key: str, category: str | None = "payments", state: str = "on", **extra):
    body = {"key": key, "state": state, "default": {"variant": "on"}, **extra}
    if category is not None:
        body["kill_category"] = category
    response = api.post("/v1/flags", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def state_of(api, key: str) -> str:
    return api.get(f"/v1/flags/{key}").json()["state"]


def test_kill_category__is_part_of_the_flag_document(api):
    created = flag(api, "pay", category="payments")
    assert created["kill_category"] == "payments"
    assert api.get("/v1/flags/pay").json()["kill_category"] == "payments"
    assert flag(api, "plain", category=None)["kill_category"] is None


def test_kill_category__patch_put_and_clear(api):
    flag(api, "pay", category=None)
    patched = api.patch("/v1/flags/pay", {"kill_category": "search"}, format="json")
    assert patched.status_code == 200 and patched.json()["kill_category"] == "search"
    assert patched.json()["version"] == 2, "changing only the category is a new version"
    put = api.put("/v1/flags/pay", {"key": "pay", "state": "on"}, format="json")
    assert put.status_code == 200 and put.json()["kill_category"] is None, "a full replace clears it"
    again = api.patch("/v1/flags/pay", {"kill_category": None}, format="json")
    assert again.json()["version"] == put.json()["version"], "no change, no version"


@pytest.mark.parametrize("bad", ["Payments", "-x", "a b", "x" * 65, 7, ["a"], "pay\x00"])
def test_kill_category__not_a_short_slug__is_422_naming_it(api, bad):
    response = api.post("/v1/flags", {"key": "f", "kill_category": bad}, format="json")
    assert response.status_code == 422
    assert "kill_category" in response.json()["error"]["details"]["fields"]


def test_kill_category__same_body_again_is_200_a_different_category_is_409(api):
    flag(api, "pay")
    body = {"key": "pay", "state": "on", "default": {"variant": "on"}}
    assert api.post("/v1/flags", {**body, "kill_category": "payments"}, format="json").status_code == 200
    assert api.post("/v1/flags", {**body, "kill_category": "search"}, format="json").status_code == 409


def test_kill_category__stays_outside_the_engine_document(api, tenant):
    """The engine (and the SDK's snapshot) refuses unknown fields: the category must never reach it."""
    from flags.mappers import flag_to_engine

    flag(api, "pay")
    assert "kill_category" not in flag_to_engine(Flag.objects.for_tenant(tenant).get(key="pay"))


def test_engage__turns_every_live_flag_of_the_category_off(api):
    flag(api, "pay-a")
    flag(api, "pay-b")
    flag(api, "pay-off", state="off")
    flag(api, "search", category="search")

    response = api.post("/v1/killswitch/payments", **WHY)

    assert response.status_code == 201
    body = response.json()
    assert body["category"] == "payments" and body["flags"] == ["pay-a", "pay-b"]
    assert body["reason"] == "payments provider outage INC-42" and body["by"].startswith("client:")
    assert response["Location"] == "/v1/killswitch/payments"
    assert [state_of(api, k) for k in ("pay-a", "pay-b", "pay-off", "search")] == ["off", "off", "off", "on"]
    evaluated = api.post("/v1/evaluate", {"flag_key": "pay-a", **USER}, format="json").json()
    assert evaluated["reason"] == "OFF", "evaluation answers OFF right after the engage"


def test_engage__another_process_cache_serves_off_at_once(api, settings):
    """A second RulesetCache stands for another server process that compiled the ruleset before."""
    settings.RULESET_CHECK_INTERVAL = 0
    flag(api, "pay-a")
    tenant = Tenant.objects.get(slug="acme")
    other_process = RulesetCache()
    from flagsvc_sdk.engine import evaluate

    assert evaluate(other_process.get(tenant), "pay-a", {"id": "u-1", "attributes": {}}).reason != "OFF"
    api.post("/v1/killswitch/payments", **WHY)
    assert evaluate(other_process.get(tenant), "pay-a", {"id": "u-1", "attributes": {}}).reason == "OFF"


def test_engage__without_a_reason__is_422_naming_reason_and_changes_nothing(api):
    flag(api, "pay-a")
    for headers in ({}, {"HTTP_X_CHANGE_REASON": "   "}):
        response = api.post("/v1/killswitch/payments", **headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert "reason" in response.json()["error"]["details"]["fields"]
    assert state_of(api, "pay-a") == "on"
    assert api.get("/v1/killswitch").json()["results"] == []


def test_engage__audits_each_flag_as_kill_with_the_reason_and_emits_one_event(api):
    flag(api, "pay-a")
    flag(api, "pay-b")
    before_events = ChangeEvent.objects.for_tenant(Tenant.objects.get(slug="acme")).count()

    api.post("/v1/killswitch/payments", **WHY)

    kills = api.get("/v1/audit?action=kill").json()["results"]
    assert sorted(e["entity_key"] for e in kills) == ["pay-a", "pay-b"]
    assert {e["reason"] for e in kills} == {"payments provider outage INC-42"}
    assert all(e["diff"]["state"] == {"from": "on", "to": "off"} for e in kills)
    events = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    new = events[before_events:]
    assert [e["type"] for e in new] == ["killswitch.engaged"], "one event for the whole switch"
    assert new[0]["entity"] == "killswitch" and new[0]["key"] == "payments"
    assert new[0]["ruleset_version"] is not None


def test_engage__twice__is_409_conflict_and_keeps_the_first(api):
    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)
    again = api.post("/v1/killswitch/payments", HTTP_X_CHANGE_REASON="second")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.get("/v1/killswitch").json()["results"][0]["reason"] == "payments provider outage INC-42"


def test_engage__a_category_no_live_flag_names__is_404(api):
    flag(api, "pay-a")
    response = api.post("/v1/killswitch/paymnets", **WHY)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_engage__a_category_that_is_not_a_slug__is_422_naming_category(api):
    response = api.post("/v1/killswitch/Pay%20ments", **WHY)
    assert response.status_code == 422
    assert "category" in response.json()["error"]["details"]["fields"]


def test_killswitch__needs_the_admin_scope(make_api, tenant):
    writer = make_api(tenant, ["flags:read", "flags:write"])
    flag(writer, "pay-a")
    for call in (
        lambda: writer.get("/v1/killswitch"),
        lambda: writer.post("/v1/killswitch/payments", **WHY),
        lambda: writer.delete("/v1/killswitch/payments", **WHY),
    ):
        response = call()
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
    assert state_of(writer, "pay-a") == "on"


def test_killswitch__needs_a_token(client):
    assert client.get("/v1/killswitch", HTTP_X_TENANT_ID="acme").status_code == 401


def test_killswitch__never_touches_or_lists_another_tenants_flags(api, other_api):
    flag(api, "pay-a")
    flag(other_api, "pay-a")

    assert api.post("/v1/killswitch/payments", **WHY).status_code == 201

    assert state_of(other_api, "pay-a") == "on"
    assert other_api.get("/v1/killswitch").json()["results"] == []
    assert other_api.get("/v1/killswitch/payments").status_code == 404
    assert other_api.delete("/v1/killswitch/payments").status_code == 404
    assert state_of(api, "pay-a") == "off"


def test_list__the_engaged_categories_with_who_why_and_flags(api):
    flag(api, "pay-a")
    flag(api, "search", category="search")
    api.post("/v1/killswitch/payments", **WHY)

    body = api.get("/v1/killswitch").json()

    assert body["count"] == 1
    (switch,) = body["results"]
    assert set(switch) == {"category", "engaged_at", "by", "reason", "flags"}
    assert switch["category"] == "payments" and switch["flags"] == ["pay-a"]
    assert switch["engaged_at"].endswith("Z")
    assert api.get("/v1/killswitch/payments").json() == switch
    assert api.get("/v1/killswitch/search").status_code == 404


def test_release__puts_each_flag_back_and_emits_one_event(api):
    flag(api, "pay-a")
    flag(api, "pay-off", state="off")
    api.post("/v1/killswitch/payments", **WHY)
    before_events = len(api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"])

    response = api.delete("/v1/killswitch/payments", HTTP_X_CHANGE_REASON="provider is back")

    assert response.status_code == 200
    assert response.json()["restored"] == ["pay-a"] and response.json()["kept"] == []
    assert state_of(api, "pay-a") == "on" and state_of(api, "pay-off") == "off"
    unkills = api.get("/v1/audit?action=unkill").json()["results"]
    assert [(e["entity_key"], e["reason"]) for e in unkills] == [("pay-a", "provider is back")]
    events = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    assert [e["type"] for e in events[before_events:]] == ["killswitch.released"]
    assert api.get("/v1/killswitch").json()["results"] == []
    evaluated = api.post("/v1/evaluate", {"flag_key": "pay-a", **USER}, format="json").json()
    assert evaluated["reason"] == "DEFAULT"


def test_release__a_category_that_is_not_engaged__is_404(api):
    flag(api, "pay-a")
    assert api.delete("/v1/killswitch/payments").status_code == 404
    api.post("/v1/killswitch/payments", **WHY)
    assert api.delete("/v1/killswitch/payments").status_code == 200
    assert api.delete("/v1/killswitch/payments").status_code == 404, "released twice"


def test_release__a_hand_change_of_the_state_while_engaged_wins(api):
    flag(api, "pay-on-by-hand")
    flag(api, "pay-on-off-by-hand")
    api.post("/v1/killswitch/payments", **WHY)
    api.patch("/v1/flags/pay-on-by-hand", {"state": "on"}, format="json")
    api.patch("/v1/flags/pay-on-off-by-hand", {"state": "on"}, format="json")
    api.patch("/v1/flags/pay-on-off-by-hand", {"state": "off"}, format="json")

    body = api.delete("/v1/killswitch/payments").json()

    assert body["restored"] == []
    assert [k["key"] for k in body["kept"]] == ["pay-on-by-hand", "pay-on-off-by-hand"]
    assert state_of(api, "pay-on-by-hand") == "on"
    assert state_of(api, "pay-on-off-by-hand") == "off", "the last decision by hand was off"


def test_release__other_hand_changes_while_engaged_are_kept_and_the_state_comes_back(api):
    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)
    api.patch("/v1/flags/pay-a", {"description": "fixed while killed", "tags": ["x"]}, format="json")

    api.delete("/v1/killswitch/payments")

    after = api.get("/v1/flags/pay-a").json()
    assert after["state"] == "on"
    assert after["description"] == "fixed while killed" and after["tags"] == ["x"]


def test_release__a_flag_archived_while_engaged_is_left_archived(api):
    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)
    api.delete("/v1/flags/pay-a")

    body = api.delete("/v1/killswitch/payments").json()

    assert body["kept"][0]["key"] == "pay-a" and "archived" in body["kept"][0]["why"]
    assert api.get("/v1/flags/pay-a?include_archived=true").json()["state"] == "off"


def test_a_flag_created_in_an_engaged_category__is_not_turned_off_nor_released(api):
    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)

    flag(api, "pay-new", state="on")

    assert state_of(api, "pay-new") == "on", "the creator's explicit state wins"
    assert api.get("/v1/killswitch/payments").json()["flags"] == ["pay-a"]
    assert api.delete("/v1/killswitch/payments").json()["restored"] == ["pay-a"]
    assert state_of(api, "pay-new") == "on"


def test_engage__bypasses_no_audit_the_chain_stays_verifiable(api, tenant):
    from audit.verification import verify_chain

    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)
    api.delete("/v1/killswitch/payments", **WHY)
    assert verify_chain(tenant=tenant).ok
    actions = list(AuditEntry.objects.for_tenant(tenant).order_by("seq").values_list("entity", "action"))
    assert actions[-4:] == [
        ("flag", "kill"),
        ("killswitch", "engage"),
        ("flag", "unkill"),
        ("killswitch", "release"),
    ]
    assert Flag.objects.for_tenant(tenant).get(key="pay-a").version == 3


def test_audit__filters_the_switch_entries_by_entity(api):
    flag(api, "pay-a")
    api.post("/v1/killswitch/payments", **WHY)
    response = api.get("/v1/audit?entity=killswitch")
    assert response.status_code == 200
    (entry,) = response.json()["results"]
    assert (entry["entity_key"], entry["action"]) == ("payments", "engage")
    assert entry["after"]["flags"] == ["pay-a"] and entry["reason"] == "payments provider outage INC-42"
