"""/v1/evaluate, /bulk, /preview (api.md, Evaluation) and the compiled-ruleset cache."""

from __future__ import annotations

import time

import mmh3
import pytest
from django.test import override_settings

USER = {"id": "u-42", "attributes": {"country": "NL", "plan": "pro"}}
ROLLOUT = {
    "key": "checkout-redesign",
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 20}, {"key": "off", "value": False, "weight": 80}],
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
}


def expected_bucket(tenant: str, flag: str, user_id: str) -> float:
    return mmh3.hash(f"{tenant}:{flag}:{user_id}", 0, False) / 2**32


@pytest.mark.django_db(transaction=True)
def test_evaluate__rule_match_with_bucket_and_version(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    response = api.post("/v1/evaluate", {"flag_key": "checkout-redesign", "user": USER}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["variant"] == "on" and body["value"] is True
    assert body["reason"] == "RULE_MATCH" and body["rule_id"] == "nl"
    assert body["details"]["flag_version"] == 1
    assert body["details"]["bucket"] == expected_bucket("acme", "checkout-redesign", "u-42")


@pytest.mark.django_db(transaction=True)
def test_evaluate__percentage_rollout_follows_the_normative_formula(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    for index in range(50):
        user_id = f"user-{index}"
        body = api.post(
            "/v1/evaluate", {"flag_key": "checkout-redesign", "user": {"id": user_id}}, format="json"
        ).json()
        bucket = expected_bucket("acme", "checkout-redesign", user_id)
        assert body["reason"] == "PERCENTAGE_ROLLOUT"
        assert body["variant"] == ("on" if bucket < 20 / 100 else "off")


@pytest.mark.django_db(transaction=True)
def test_evaluate__a_write_is_visible_to_the_next_evaluation(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    first = api.post("/v1/evaluate", {"flag_key": "checkout-redesign", "user": USER}, format="json").json()
    assert first["reason"] == "RULE_MATCH"
    api.patch("/v1/flags/checkout-redesign", {"state": "off"}, format="json")
    second = api.post("/v1/evaluate", {"flag_key": "checkout-redesign", "user": USER}, format="json").json()
    assert second["reason"] == "OFF" and second["variant"] == "off"
    assert second["details"]["flag_version"] == 2


@pytest.mark.django_db(transaction=True)
def test_evaluate__unknown_or_archived_flag__404_flag_not_found(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    api.delete("/v1/flags/checkout-redesign")
    for key in ("checkout-redesign", "never-existed"):
        response = api.post("/v1/evaluate", {"flag_key": key, "user": USER}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "flag_not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("user", [None, {}, {"id": 42}, {"id": ""}, {"id": "u", "attributes": []}, "u-1"])
def test_evaluate__bad_user__422(api, user):
    response = api.post("/v1/evaluate", {"flag_key": "x", "user": user}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db(transaction=True)
def test_evaluate__warm_cache_makes_no_database_query(api, django_assert_num_queries):
    api.post("/v1/flags", ROLLOUT, format="json")
    api.post("/v1/evaluate", {"flag_key": "checkout-redesign", "user": USER}, format="json")
    # Within the check interval a warm process answers from memory: auth, tenant and rules included.
    with override_settings(RULESET_CHECK_INTERVAL=3600), django_assert_num_queries(0):
        for _ in range(20):
            response = api.post(
                "/v1/evaluate", {"flag_key": "checkout-redesign", "user": USER}, format="json"
            )
            assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_bulk__all_live_flags_and_unknown_keys_as_errors(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    api.post("/v1/flags", {"key": "plain", "state": "on"}, format="json")
    api.post("/v1/flags", {"key": "gone"}, format="json")
    api.delete("/v1/flags/gone")
    body = api.post("/v1/evaluate/bulk", {"user": USER}, format="json").json()
    assert set(body["flags"]) == {"checkout-redesign", "plain"}
    assert body["ruleset_version"]
    body = api.post(
        "/v1/evaluate/bulk", {"user": USER, "flag_keys": ["plain", "gone", "nope"]}, format="json"
    ).json()
    assert body["flags"]["plain"]["variant"] == "on"
    for key in ("gone", "nope"):
        assert body["flags"][key] == {  # exactly api.md's object
            "variant": None,
            "value": None,
            "reason": "ERROR",
            "error_code": "FLAG_NOT_FOUND",
        }


@pytest.mark.django_db(transaction=True)
def test_preview__trace_and_dry_run_summary_without_storing(api, tenant):
    api.post("/v1/flags", ROLLOUT, format="json")
    users = [{"id": f"u-{i}", "attributes": {"country": "NL" if i % 2 else "DE"}} for i in range(200)]
    draft = {**ROLLOUT, "rules": []}
    body = api.post(
        "/v1/evaluate/preview",
        {"flag_key": "checkout-redesign", "flag": draft, "users": users},
        format="json",
    ).json()
    assert len(body["results"]) == 200
    assert sum(body["summary"]["variants"].values()) == 200
    # NL users (100) were all "on" through the rule; without it ~80 % of them become "off".
    assert 50 <= body["summary"]["changed"] <= 100
    first = body["results"][0]
    assert first["user_id"] == "u-0"
    assert {"step"} <= set(first["trace"][0])
    assert api.get("/v1/flags/checkout-redesign").json()["version"] == 1


@pytest.mark.django_db(transaction=True)
def test_preview__trace_shows_each_condition_tried(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    body = api.post(
        "/v1/evaluate/preview",
        {"flag_key": "checkout-redesign", "user": {"id": "u-1", "attributes": {"country": "DE"}}},
        format="json",
    ).json()
    rule_steps = [step for step in body["results"][0]["trace"] if step["step"] == "rule"]
    condition = rule_steps[0]["conditions"][0]
    assert condition == {
        **condition,
        "attribute": "country",
        "operator": "eq",
        "expected": "NL",
        "actual": "DE",
        "outcome": False,
    }


@pytest.mark.django_db
def test_preview__more_than_1000_users__422(api):
    users = [{"id": f"u-{i}"} for i in range(1001)]
    response = api.post("/v1/evaluate/preview", {"flag_key": "x", "users": users}, format="json")
    assert response.status_code == 422


def _rules(count: int, attribute: str = "n") -> list[dict]:
    return [
        {"id": f"r{n}", "when": {"attr": attribute, "op": "eq", "value": n}, "serve": {"variant": "on"}}
        for n in range(count)
    ]


@pytest.mark.django_db(transaction=True)
def test_preview__draft_of_1500_rules_for_1000_users_with_flags_read__422_at_once(make_api, tenant):
    """The reproduction: 47 s, 887 MB and a 2.4 GB worker before the caps."""
    api = make_api(tenant, scopes=["flags:read"])
    draft = {"key": "huge", "state": "on", "rules": _rules(1500)}
    users = [{"id": f"u-{i}", "attributes": {"n": -1}} for i in range(1000)]
    started = time.monotonic()
    response = api.post("/v1/evaluate/preview", {"flag": draft, "users": users}, format="json")
    assert response.status_code == 422, response.content
    assert time.monotonic() - started < 5, "refused before any evaluation"
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "at most 200 rules; got 1500" in error["details"]["fields"]["rules"][0]


@pytest.mark.django_db(transaction=True)
def test_preview__users_times_trace_over_the_budget__422_says_how_many_users_fit(make_api, tenant):
    # 200 rules of one condition: 4 fixed steps + 200 x (rule + condition) = 404 entries a user.
    api = make_api(tenant, scopes=["flags:read"])
    draft = {"key": "wide", "state": "on", "rules": _rules(200)}
    users = [{"id": f"u-{i}", "attributes": {"n": -1}} for i in range(1000)]
    response = api.post("/v1/evaluate/preview", {"flag": draft, "users": users}, format="json")
    assert response.status_code == 422, response.content
    message = response.json()["error"]["details"]["fields"]["users"][0]
    assert "404 steps and conditions per user" in message
    assert "at most 247 users at a time (you sent 1000)" in message


@pytest.mark.django_db(transaction=True)
def test_preview__just_under_the_trace_budget__200_with_every_trace(make_api, tenant):
    api = make_api(tenant, scopes=["flags:read"])
    draft = {"key": "wide", "state": "on", "rules": _rules(200)}
    users = [{"id": f"u-{i}", "attributes": {"n": -1}} for i in range(247)]  # 247 x 404 = 99,788
    response = api.post("/v1/evaluate/preview", {"flag": draft, "users": users}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 247
    assert len(body["results"][0]["trace"]) == 204  # off, deny, allow, 200 rules, default


@pytest.mark.django_db(transaction=True)
def test_preview__traces_that_echo_a_large_attribute_past_8_MiB__413(make_api, tenant):
    # One user, 100 conditions on a 100 kB attribute: each condition echoes it as "actual".
    api = make_api(tenant, scopes=["flags:read"])
    draft = {"key": "echo", "state": "on", "rules": _rules(100, attribute="bio")}
    user = {"id": "u-1", "attributes": {"bio": "x" * 100_000}}
    response = api.post("/v1/evaluate/preview", {"flag": draft, "user": user}, format="json")
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"field": "users", "limit_bytes": 8 * 1024 * 1024}


@pytest.mark.django_db(transaction=True)
def test_preview__past_its_deadline__503_in_the_error_shape(api):
    api.post("/v1/flags", ROLLOUT, format="json")
    with override_settings(PREVIEW_DEADLINE_SECONDS=0):
        response = api.post(
            "/v1/evaluate/preview", {"flag_key": "checkout-redesign", "user": USER}, format="json"
        )
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "deadline" in error["message"]
    assert error["details"] == {"deadline_seconds": 0}
