"""Exposure events (issue 15, item 4; README "Exposure events"): `POST /v1/exposures` forwards an SDK's
batch as one signed `flag.exposure` delivery per webhook that names that type, never to another
tenant's, never into the change-event outbox; the user ids are gone once the delivery settles."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as StandardWebhook

from audit.models import AuditEntry, ChangeEvent
from kernel.timefmt import iso
from tests.api.test_hostile_input import assert_error, nested_array, send
from tests.factories import make_flag
from tests.receiver import running_receiver
from webhooks.exposures import EXPOSURE, MAX_EXPOSURES
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import delivery_redeliver, webhook_create
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks/flags"


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_RETRY_HOURS = 24


def exposure(
    flag_key: str = "checkout", user_id: str = "u-1", variant: str = "on", **extra: Any
) -> dict[str, Any]:
    return {"flag_key": flag_key, "variant": variant, "user_id": user_id, "ts": iso(timezone.now()), **extra}


def report(client: Any, exposures: list[Any], batch_id: str | None = None) -> Any:
    body = {"batch_id": batch_id or uuid.uuid4().hex, "exposures": exposures}
    return client.post("/v1/exposures", body, format="json")


def deliveries(tenant: Any) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.for_tenant(tenant).order_by("pk"))


def hook(tenant: Any, events: list[str], url: str = PUBLIC) -> Any:
    return webhook_create(tenant=tenant, data={"url": url, "events": events})


# --- Accepting and forwarding ------------------------------------------------------------------------


def test_exposures__one_delivery_per_subscribed_webhook_listing_the_batch(api, tenant):
    make_flag(tenant, "checkout")
    subscribed = hook(tenant, ["flag.exposure"])
    batch = [exposure(user_id="u-1"), exposure(user_id="u-2", variant="off")]

    response = report(api, batch, batch_id="b-1")

    assert response.status_code == 202, response.content
    assert response.json() == {"batch_id": "b-1", "accepted": 2, "ignored_flag_keys": []}
    [delivery] = deliveries(tenant)
    assert delivery.webhook_id == subscribed.webhook.pk
    assert delivery.event_type == EXPOSURE
    assert delivery.event_id is None
    assert delivery.payload["type"] == "flag.exposure"
    assert delivery.payload["tenant"] == tenant.slug
    assert [(e["user_id"], e["variant"]) for e in delivery.payload["exposures"]] == [
        ("u-1", "on"),
        ("u-2", "off"),
    ]


def test_exposures__wildcards_do_not_include_them(api, tenant):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.*"])
    hook(tenant, ["*"])

    assert report(api, [exposure()]).status_code == 202

    assert deliveries(tenant) == [], "flag.exposure is heard only by a webhook that names it"


def test_exposures__inactive_webhook_or_none__nothing_stored(api, tenant):
    make_flag(tenant, "checkout")
    created = hook(tenant, ["flag.exposure"])
    api.patch(f"/v1/webhooks/{created.webhook.pk}", {"active": False}, format="json")

    assert report(api, [exposure()]).status_code == 202

    assert deliveries(tenant) == []


def test_exposures__another_tenants_webhook_hears_nothing(api, tenant, other_tenant):
    make_flag(tenant, "checkout")
    make_flag(other_tenant, "checkout")
    hook(other_tenant, ["flag.exposure"])
    mine = hook(tenant, ["flag.exposure"])

    assert report(api, [exposure()]).status_code == 202

    assert deliveries(other_tenant) == []
    assert [d.webhook_id for d in deliveries(tenant)] == [mine.webhook.pk]


def test_exposures__keys_of_no_flag_of_this_tenant__dropped_and_named(api, tenant, other_tenant):
    make_flag(tenant, "checkout")
    make_flag(other_tenant, "theirs")
    hook(tenant, ["flag.exposure"])

    response = report(api, [exposure(), exposure("theirs"), exposure("made-up")])

    assert response.json()["accepted"] == 1
    assert response.json()["ignored_flag_keys"] == ["made-up", "theirs"]
    [delivery] = deliveries(tenant)
    assert [e["flag_key"] for e in delivery.payload["exposures"]] == ["checkout"]


def test_exposures__same_batch_id_twice__one_delivery_with_one_webhook_id(api, tenant):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.exposure"])

    first = report(api, [exposure()], batch_id="again")
    second = report(api, [exposure()], batch_id="again")

    assert first.status_code == second.status_code == 202
    assert len(deliveries(tenant)) == 1


def test_exposures__same_batch_id_in_two_tenants__both_delivered(api, other_api, tenant, other_tenant):
    for owner in (tenant, other_tenant):
        make_flag(owner, "checkout")
        hook(owner, ["flag.exposure"])

    report(api, [exposure()], batch_id="b")
    report(other_api, [exposure()], batch_id="b")

    [mine], [theirs] = deliveries(tenant), deliveries(other_tenant)
    assert mine.message_id != theirs.message_id


def test_exposures__no_change_event_and_no_audit_entry(api, tenant):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.exposure"])
    events = ChangeEvent.objects.for_tenant(tenant).count()
    audited = AuditEntry.objects.for_tenant(tenant).count()

    report(api, [exposure()])

    assert ChangeEvent.objects.for_tenant(tenant).count() == events
    assert AuditEntry.objects.for_tenant(tenant).count() == audited
    feed = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()
    assert all(event["type"] != EXPOSURE for event in feed["events"])


def test_exposures__needs_the_evaluate_scope(make_api, tenant):
    client = make_api(tenant, scopes=["flags:read"])

    assert report(client, [exposure()]).status_code == 403


def test_webhook__subscribes_to_flag_exposure_by_name(api):
    response = api.post("/v1/webhooks", {"url": PUBLIC, "events": ["flag.exposure"]}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["events"] == ["flag.exposure"]


# --- Delivery and scrubbing --------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "status"), [([204], "succeeded"), ([500], "failed")])
def test_worker__signed_delivery__user_ids_gone_once_settled(
    api, tenant, loopback_allowed, settings, script, status
):
    settings.WEBHOOK_RETRY_HOURS = 0  # a failure is final at once
    make_flag(tenant, "checkout")
    with running_receiver(script) as receiver:
        created = hook(tenant, ["flag.exposure"], url=receiver.url)
        report(api, [exposure(user_id="secret-user-1"), exposure(user_id="secret-user-2")], batch_id="b-7")

        Worker().run_once()

        assert receiver.wait_for(1)
    request = receiver.requests[0]
    payload = StandardWebhook(created.secret).verify(request.body, request.headers)
    assert payload["type"] == "flag.exposure"
    assert request.headers["webhook-id"].startswith("exp_")
    assert [e["user_id"] for e in payload["exposures"]] == ["secret-user-1", "secret-user-2"]
    [delivery] = deliveries(tenant)
    assert delivery.status == status
    assert "secret-user" not in json.dumps(delivery.payload)
    assert delivery.payload["exposures"] == 2 and delivery.payload["scrubbed"] is True
    listed = api.get(f"/v1/webhooks/{created.webhook.pk}/deliveries").json()
    assert (listed["results"][0]["event_type"], listed["results"][0]["event_id"]) == ("flag.exposure", None)


def test_worker__retry_keeps_the_exposures_until_settled(api, tenant, loopback_allowed, settings):
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 0
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 0
    make_flag(tenant, "checkout")
    with running_receiver([500, 200]) as receiver:
        hook(tenant, ["flag.exposure"], url=receiver.url)
        report(api, [exposure(user_id="u-9")])

        Worker().run_once()
        [pending] = deliveries(tenant)
        assert pending.status == DeliveryStatus.PENDING
        assert pending.payload["exposures"][0]["user_id"] == "u-9", "still owed: still whole"
        Worker().run_once()

        assert receiver.wait_for(2)
    first, second = receiver.requests
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    [settled] = deliveries(tenant)
    assert settled.status == DeliveryStatus.SUCCEEDED
    assert "u-9" not in json.dumps(settled.payload)


def test_redeliver__exposure_delivery__409(api, tenant, loopback_allowed, settings):
    settings.WEBHOOK_RETRY_HOURS = 0
    make_flag(tenant, "checkout")
    with running_receiver([500]) as receiver:
        created = hook(tenant, ["flag.exposure"], url=receiver.url)
        report(api, [exposure()])
        Worker().run_once()
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.FAILED

    response = api.post(f"/v1/webhooks/{created.webhook.pk}/deliveries/{delivery.pk}/redeliver")

    assert_error(response, 409, "conflict")
    with pytest.raises(Exception, match="not kept"):
        delivery_redeliver(tenant=tenant, webhook_id=created.webhook.pk, delivery_id=delivery.pk)


# --- Hostile input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (nested_array(10_000), None),
        ('{"batch_id": "b", "exposures": ' + nested_array(100) + "}", None),
        ('{"batch_id": "b", "exposures": [' + ",".join(['{"a": ' * 60 + "1" + "}" * 60]) + "]}", None),
        ('{"batch_id": "b\\u0000", "exposures": []}', "batch_id"),
        ('{"batch_id": "\\ud800", "exposures": [{}]}', "batch_id"),
        ('{"batch_id": "' + "b" * 5000 + '", "exposures": [{}]}', "batch_id"),
        ('{"batch_id": 12, "exposures": [{}]}', "batch_id"),
        ('{"batch_id": "b", "exposures": {}}', "exposures"),
        ('{"batch_id": "b", "exposures": []}', "exposures"),
        ('{"batch_id": "b", "exposures": "all of them"}', "exposures"),
        ('{"batch_id": "b", "exposures": [12]}', "exposures[0]"),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "\\ud800", '
            '"ts": "2026-12-01T10:00:00Z"}]}',
            "exposures[0].user_id",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "a\\u0000b", '
            '"ts": "2026-12-01T10:00:00Z"}]}',
            "exposures[0].user_id",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "'
            + "u" * 300
            + '", "ts": "2026-12-01T10:00:00Z"}]}',
            "exposures[0].user_id",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": ["checkout"], "variant": "on", "user_id": "u", '
            '"ts": "2026-12-01T10:00:00Z"}]}',
            "exposures[0].flag_key",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": null, "user_id": "u", '
            '"ts": "2026-12-01T10:00:00Z"}]}',
            "exposures[0].variant",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "u", '
            '"ts": "yesterday"}]}',
            "exposures[0].ts",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "u", '
            '"ts": "2026-12-01T10:00:00"}]}',
            "exposures[0].ts",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "u", '
            '"ts": "1999-12-01T10:00:00Z"}]}',
            "exposures[0].ts",
        ),
        (
            '{"batch_id": "b", "exposures": [{"flag_key": "checkout", "variant": "on", "user_id": "u", '
            '"ts": "2026-12-01T10:00:00Z", "email": "x@y"}]}',
            "exposures[0].email",
        ),
        ('{"batch_id": "b", "exposures": [{}], "extra": 1}', "extra"),
        ("[1, 2]", "body"),
    ],
)
def test_exposures__hostile_body__one_error_shape_and_nothing_stored(api, tenant, raw, field):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.exposure"])

    response = send(api, "POST", "/v1/exposures", raw)

    assert response.status_code in (400, 413, 422), response.content[:300]
    code = {400: "malformed_request", 413: "payload_too_large", 422: "validation_error"}[response.status_code]
    assert_error(response, response.status_code, code, field if response.status_code == 422 else None)
    assert deliveries(tenant) == []


def test_exposures__20_000_items__422_naming_the_cap(api, tenant):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.exposure"])
    one = {"flag_key": "checkout", "variant": "on", "user_id": "u", "ts": iso(timezone.now())}
    raw = json.dumps({"batch_id": "b", "exposures": [one] * 20_000})

    response = send(api, "POST", "/v1/exposures", raw)

    assert response.status_code in (413, 422)
    if response.status_code == 422:
        assert_error(response, 422, "validation_error", "exposures")
    assert deliveries(tenant) == []


def test_exposures__at_the_cap__accepted(api, tenant):
    make_flag(tenant, "checkout")
    hook(tenant, ["flag.exposure"])
    batch = [exposure(user_id=f"user-{i}") for i in range(MAX_EXPOSURES)]

    response = report(api, batch)

    assert response.status_code == 202, response.content[:300]
    assert len(deliveries(tenant)[0].payload["exposures"]) == MAX_EXPOSURES


def test_exposures__many_bad_entries__problems_capped(api, tenant):
    batch = [{"flag_key": 1} for _ in range(500)]

    response = report(api, batch)

    fields = assert_error(response, 422, "validation_error")["details"]["fields"]
    assert 0 < len(fields) <= 20


def test_exposures__ts_ahead_or_old__refused(api, tenant):
    make_flag(tenant, "checkout")
    ahead = exposure(ts=iso(timezone.now() + timedelta(hours=1)))
    old = exposure(ts=iso(timezone.now() - timedelta(days=8)))

    response = report(api, [ahead, old])

    fields = assert_error(response, 422, "validation_error")["details"]["fields"]
    assert {"exposures[0].ts", "exposures[1].ts"} <= set(fields)
