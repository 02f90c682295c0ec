"""GET /metrics (api.md, Operations): our series, request metrics by route name, no unbounded labels."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from evaluation import metrics
from evaluation.services import evaluate_bulk
from tests.factories import make_flag

pytestmark = pytest.mark.django_db(transaction=True)

USER_ID = "u-secret-id-123"
FLAG_KEY = "some-flag"
ROLLOUT = {
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape() -> tuple[str, Samples]:
    response = APIClient().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def evaluate(api: APIClient, flag_key: str, user_id: str = USER_ID, **attributes: Any) -> Any:
    return api.post(
        "/v1/evaluate",
        {"flag_key": flag_key, "user": {"id": user_id, "attributes": attributes}},
        format="json",
    )


def test_metrics__an_evaluation__counts_by_reason_latency_cache_and_compile(api, tenant):
    make_flag(tenant, FLAG_KEY, **ROLLOUT)
    _, before = scrape()

    assert evaluate(api, FLAG_KEY, country="NL").json()["reason"] == "RULE_MATCH"
    assert evaluate(api, FLAG_KEY, country="DE").json()["reason"] == "PERCENTAGE_ROLLOUT"
    _, after = scrape()

    assert delta(before, after, "flagsvc_evaluations_total", reason="RULE_MATCH") == 1
    assert delta(before, after, "flagsvc_evaluations_total", reason="PERCENTAGE_ROLLOUT") == 1
    assert delta(before, after, "flagsvc_evaluation_seconds_count", route="evaluate") == 2
    assert delta(before, after, "flagsvc_evaluation_seconds_bucket", route="evaluate", le="+Inf") == 2
    assert delta(before, after, "flagsvc_ruleset_cache_misses_total") == 1, "the first evaluation compiles"
    assert delta(before, after, "flagsvc_ruleset_cache_hits_total") >= 1, "the second one does not"
    assert delta(before, after, "flagsvc_ruleset_compile_seconds_count") == 1
    assert value(after, "flagsvc_live_flags", tenant="acme") == 1


def test_metrics__bulk_evaluation__counts_each_flag_by_reason(api, tenant):
    make_flag(tenant, FLAG_KEY, **ROLLOUT)
    make_flag(tenant, "dark", state="off")
    _, before = scrape()
    response = api.post(
        "/v1/evaluate/bulk", {"user": {"id": USER_ID, "attributes": {"country": "NL"}}}, format="json"
    )
    assert response.status_code == 200
    _, after = scrape()
    assert delta(before, after, "flagsvc_evaluations_total", reason="RULE_MATCH") == 1
    assert delta(before, after, "flagsvc_evaluations_total", reason="OFF") == 1
    assert delta(before, after, "flagsvc_evaluation_seconds_count", route="bulk") == 1


def test_metrics__requests_are_labelled_by_route_name_method_and_status(api, tenant):
    make_flag(tenant, FLAG_KEY)
    make_flag(tenant, "other-flag")
    _, before = scrape()
    api.get(f"/v1/flags/{FLAG_KEY}")
    api.get("/v1/flags/other-flag")
    api.get("/v1/flags/no-such-flag")
    _, after = scrape()

    responses = "django_http_responses_total_by_status_view_method_total"
    assert delta(before, after, responses, view="flag-detail", method="GET", status="200") == 2
    assert delta(before, after, responses, view="flag-detail", method="GET", status="404") == 1
    requests = "django_http_requests_total_by_view_transport_method_total"
    assert delta(before, after, requests, view="flag-detail", transport="http", method="GET") == 3
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert delta(before, after, latency, view="flag-detail", method="GET") == 3


def test_metrics__evaluation_requests_count_in_the_request_series_too(api, tenant):
    """The evaluate route answers without DRF and with cached label children; its requests still count."""
    make_flag(tenant, FLAG_KEY, **ROLLOUT)
    _, before = scrape()
    assert evaluate(api, FLAG_KEY).status_code == 200
    assert evaluate(api, FLAG_KEY, country="NL").status_code == 200
    assert evaluate(api, "no-such-flag").status_code == 404
    _, after = scrape()

    responses = "django_http_responses_total_by_status_view_method_total"
    assert delta(before, after, responses, view="evaluate", method="POST", status="200") == 2
    assert delta(before, after, responses, view="evaluate", method="POST", status="404") == 1
    assert delta(before, after, "django_http_requests_total_by_method_total", method="POST") == 3
    assert delta(before, after, "django_http_requests_total_by_transport_total", transport="http") >= 3
    assert delta(before, after, "django_http_requests_body_total_bytes_count") >= 3
    assert delta(before, after, "django_http_requests_body_total_bytes_sum") >= 3 * len('{"flag_key":""}')
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert delta(before, after, latency, view="evaluate", method="POST") == 3


def test_metrics__no_label_carries_a_user_id_an_unknown_flag_key_or_a_raw_path(api, tenant):
    make_flag(tenant, FLAG_KEY, **ROLLOUT)
    evaluate(api, FLAG_KEY, country="NL")
    assert evaluate(api, "typed-by-caller-unknown").status_code == 404
    api.post(
        "/v1/evaluate/bulk", {"user": {"id": USER_ID}, "flag_keys": [FLAG_KEY, "bulk-unknown"]}, format="json"
    )
    api.post("/v1/evaluate/preview", {"flag_key": FLAG_KEY, "user": {"id": USER_ID}}, format="json")
    api.get(f"/v1/flags/{FLAG_KEY}")
    api.get(f"/v1/flags/{FLAG_KEY}/versions")
    api.patch(f"/v1/flags/{FLAG_KEY}", {"description": "changed"}, format="json")
    api.get("/v1/no/such/route/typed-by-caller")
    APIClient().get("/not-a-route/typed-by-caller")

    text, samples = scrape()

    for leaked in (USER_ID, "typed-by-caller", "bulk-unknown"):
        assert leaked not in text, f"{leaked!r} appears in /metrics"
    per_flag = ("flagsvc_flag_evaluations_",)
    with_key = {name for (name, labels) in samples if FLAG_KEY in dict(labels).values()}
    assert with_key, "the live flag has its own series"
    assert all(name.startswith(per_flag) for name in with_key), "a key labels the per-flag series only"
    label_values = {value for _, labels in samples for _, value in labels}
    raw_paths = [value for value in label_values if value.startswith("/") or "v1/" in value]
    assert raw_paths == [], "a raw path is a label value"


def test_metrics__needs_no_token(db):
    response = APIClient().get("/metrics")
    assert response.status_code == 200
    assert "flagsvc_evaluations_total" in response.content.decode()


@pytest.fixture
def fresh_flag_children():
    metrics.forget_flag_children()
    yield
    metrics.forget_flag_children()


def test_metrics__evaluations_by_flag_and_rule__count_live_flags_only(api, tenant, fresh_flag_children):
    make_flag(tenant, FLAG_KEY, **ROLLOUT)
    make_flag(tenant, "dark", state="off")
    _, before = scrape()

    assert evaluate(api, FLAG_KEY, country="NL").json()["rule_id"] == "nl"
    assert evaluate(api, FLAG_KEY, country="DE").status_code == 200
    assert evaluate(api, "made-up-key").status_code == 404
    bulk = api.post(
        "/v1/evaluate/bulk",
        {"user": {"id": USER_ID, "attributes": {"country": "NL"}}, "flag_keys": [FLAG_KEY, "dark", "bulk-x"]},
        format="json",
    )
    assert bulk.status_code == 200
    text, after = scrape()

    flags = "flagsvc_flag_evaluations_total"
    assert delta(before, after, flags, tenant="acme", flag=FLAG_KEY, rule="nl") == 2
    assert delta(before, after, flags, tenant="acme", flag=FLAG_KEY, rule="_none") == 1
    assert delta(before, after, flags, tenant="acme", flag="dark", rule="_none") == 1
    assert "made-up-key" not in text and "bulk-x" not in text, "a key that is not a live flag is a label"


def test_metrics__past_the_label_cap__new_flags_fold_into_other(api, tenant, settings, fresh_flag_children):
    settings.METRICS_FLAG_LABELS_MAX = 2
    for key in ("first", "second", "third"):
        make_flag(tenant, key)
    _, before = scrape()
    for key in ("first", "second", "third", "third"):
        assert evaluate(api, key).status_code == 200
    text, after = scrape()

    flags = "flagsvc_flag_evaluations_total"
    assert delta(before, after, flags, tenant="acme", flag="first", rule="_none") == 1
    assert delta(before, after, flags, tenant="acme", flag="second", rule="_none") == 1
    assert delta(before, after, flags, tenant="_other", flag="_other", rule="_other") == 2
    assert 'flag="third"' not in text


def test_metrics__the_admin_playground_is_not_counted_by_flag(tenant, fresh_flag_children):
    make_flag(tenant, "played")
    evaluate_bulk(tenant=tenant, user={"id": USER_ID}, record_metrics=False)
    text, _ = scrape()
    assert 'flag="played"' not in text
