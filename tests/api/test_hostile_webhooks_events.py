"""Hostile input on /v1/webhooks and /v1/events (issue 11 with issue 10's rules): every request below
gets the one error shape, and a refused write leaves no webhook, audit entry or secret behind."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from tests.api.test_hostile_input import assert_error, nested_array, send
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks/flags"


def nothing_written(tenant: Any) -> tuple[int, int]:
    return (Webhook.objects.for_tenant(tenant).count(), AuditEntry.objects.for_tenant(tenant).count())


@pytest.fixture
def webhook_id(api: Any) -> int:
    response = api.post("/v1/webhooks", {"url": PUBLIC, "events": ["flag.*"]}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (nested_array(10_000), None),
        ('{"url": "' + PUBLIC + '", "events": ' + nested_array(100) + "}", None),
        ('{"url": "https://93.184.215.14/a\\u0000b", "events": ["*"]}', "url"),
        ('{"url": "' + PUBLIC + '", "events": ["flag.\\u0000"]}', "events[0]"),
        ('{"url": "' + PUBLIC + '", "events": ["*"], "description": "\\ud800"}', "description"),
        ('{"url": "https://93.184.215.14/' + "a" * 5000 + '", "events": ["*"]}', "url"),
        ('{"url": "' + PUBLIC + '", "events": ["*"], "description": "' + "d" * 5000 + '"}', "description"),
        ('{"url": "' + PUBLIC + '", "events": [' + ",".join(['"flag.*"'] * 5000) + "]}", "events"),
        ('{"url": "' + PUBLIC + '", "events": ["' + "x" * 500 + '"]}', "events"),
        ('{"url": 12, "events": ["*"]}', "url"),
        ('{"url": "' + PUBLIC + '", "events": "flag.*"}', "events"),
        ('{"url": "' + PUBLIC + '", "events": [{"type": "flag.*"}]}', "events"),
        ('{"url": "' + PUBLIC + '", "events": ["*"], "active": "yes please"}', "active"),
        ('{"url": "javascript:alert(1)", "events": ["*"]}', "url"),
        ('{"url": "https://user:pass@93.184.215.14/", "events": ["*"]}', "url"),
        ('{"url": "https://[::1]/", "events": ["*"]}', "url"),
        ('{"url": "https://169.254.169.254/latest/meta-data", "events": ["*"]}', "url"),
        ('{"url": "https://0x7f.1/", "events": ["*"]}', "url"),
    ],
)
def test_webhook_create__hostile_body__422_and_nothing_stored(api, tenant, raw, field):
    before = nothing_written(tenant)

    response = send(api, "POST", "/v1/webhooks", raw)

    assert_error(response, 422, "validation_error", field)
    assert nothing_written(tenant) == before


@pytest.mark.parametrize("raw", ["[]", '"a string"', "12", "null"])
def test_webhook_create__body_not_an_object__422_not_a_500(api, tenant, raw):
    response = send(api, "POST", "/v1/webhooks", raw)

    assert_error(response, 422, "validation_error")
    assert nothing_written(tenant) == (0, 0)


def test_webhook_create__body_not_json__400(api, tenant):
    response = send(api, "POST", "/v1/webhooks", b"\xff\xfe{not json")

    assert_error(response, 400, "malformed_request")
    assert nothing_written(tenant) == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [
        nested_array(10_000),
        '{"url": "https://10.0.0.1/"}',
        '{"events": ["\\u0000"]}',
        '{"description": "' + "d" * 5000 + '"}',
    ],
)
def test_webhook_patch__hostile_body__422_and_the_webhook_unchanged(api, tenant, webhook_id, raw):
    before = Webhook.objects.for_tenant(tenant).get().to_document()

    response = send(api, "PATCH", f"/v1/webhooks/{webhook_id}", raw)

    assert_error(response, 422, "validation_error")
    assert Webhook.objects.for_tenant(tenant).get().to_document() == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/webhooks/abc",
        "/v1/webhooks/" + "9" * 40,
        "/v1/webhooks/-1",
        "/v1/webhooks/1%00",
        "/v1/webhooks/{id}/deliveries/" + "9" * 40 + "/redeliver",
        "/v1/webhooks/{id}/deliveries/abc/redeliver",
    ],
)
def test_webhook_routes__ids_no_row_could_have__404_not_500(api, webhook_id, path):
    path = path.replace("{id}", str(webhook_id))
    method = "POST" if path.endswith("redeliver") else "GET"

    response = api.generic(method, path)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("param", ["limit", "offset"])
@pytest.mark.parametrize("value", ["a%00b", "-1", "1.5"])
def test_webhook_lists__hostile_page_parameters__422_naming_them(api, webhook_id, param, value):
    for path in ("/v1/webhooks", f"/v1/webhooks/{webhook_id}/deliveries"):
        response = api.get(f"{path}?{param}={value}")
        assert_error(response, 422, "validation_error", param)


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("after=a%00b", {}, "after"),
        ("after=" + "9" * 8000, {}, "after"),
        ("after=0&limit=-5", {}, "limit"),
        ("after=0&limit=%00", {}, "limit"),
        ("", {"HTTP_LAST_EVENT_ID": "9" * 8000}, "Last-Event-ID"),
        ("", {"HTTP_LAST_EVENT_ID": "-3"}, "Last-Event-ID"),
    ],
)
def test_events__hostile_cursor_or_limit__422_naming_it(api, query, headers, field):
    response = api.get(f"/v1/events?{query}", HTTP_ACCEPT="application/json", **headers)

    assert_error(response, 422, "validation_error", field)
