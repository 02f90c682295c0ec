"""The worker against a real HTTP receiver on loopback (api.md, Webhooks; ADR 0013).

Backoff is stepped through with an injectable clock; nothing here sleeps for a retry.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from audit.models import ChangeEvent
from segments.services import segment_delete
from tests.factories import make_flag, make_segment
from tests.receiver import HANG, running_receiver
from tests.webhook_worker_support import Clock
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import delivery_redeliver, webhook_create, webhook_update
from webhooks.worker import Worker, backoff

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Clock:
    return Clock()


def only_delivery(tenant) -> WebhookDelivery:
    return WebhookDelivery.objects.for_tenant(tenant).get()


def test_worker__500_then_200__retried_after_backoff_and_delivered_once_it_succeeds(
    tenant, loopback_allowed, clock
):
    with running_receiver([500, 200]) as receiver:
        hook = webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        worker = Worker(clock=clock, rng=lambda: 1.0)

        assert worker.run_once() == 2  # one delivery made, one attempt
        first = only_delivery(tenant)
        assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
        assert first.next_attempt_at == clock.now + timedelta(seconds=10)

        clock.advance(seconds=9)
        assert worker.run_once() == 0, "not due yet: no attempt before the backoff has passed"
        clock.advance(seconds=1)
        assert worker.run_once() == 1

        delivered = only_delivery(tenant)
        assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("succeeded", 2, 200)
        assert delivered.next_attempt_at is None and delivered.last_error == ""
        assert len(receiver.requests) == 2
        first_id, second_id = (r.headers["webhook-id"] for r in receiver.requests)
        assert first_id == second_id == str(delivered.event_id), (
            "the event id, so receivers can drop duplicates"
        )
        assert worker.run_once() == 0
    assert hook.secret.startswith("whsec_")


def test_worker__delivery__signed_as_standard_webhooks_verified_by_the_library(
    tenant, loopback_allowed, clock
):
    with running_receiver([204]) as receiver:
        hook = webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        make_flag(tenant, "checkout")
        Worker(clock=clock).run_once()
        (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    payload = StandardWebhook(hook.secret).verify(request.body, headers)
    event = ChangeEvent.objects.for_tenant(tenant).get()
    assert payload["id"] == headers["webhook-id"] == str(event.pk)
    assert payload["type"] == "flag.created" and payload["key"] == "checkout" and payload["tenant"] == "acme"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(
            webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]}).secret
        ).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(hook.secret).verify(request.body.replace("checkout", "checkouT"), headers)


def test_worker__receiver_never_answers__times_out_and_is_retried(tenant, loopback_allowed, clock):
    with running_receiver([HANG, 200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.created"]})
        make_flag(tenant, "checkout")
        worker = Worker(clock=clock, timeout=0.3, rng=lambda: 0.0)
        worker.run_once()
        timed_out = only_delivery(tenant)
        assert timed_out.status == "pending" and timed_out.last_status_code is None
        assert timed_out.last_error.startswith("timed out")
        assert timed_out.next_attempt_at == clock.now + timedelta(seconds=5)
        clock.advance(seconds=5)
        worker.run_once()
        assert only_delivery(tenant).status == "succeeded"
        assert len(receiver.requests) == 2


def test_worker__failing_receiver__retried_with_backoff_for_24_hours_then_failed(
    tenant, loopback_allowed, clock
):
    with running_receiver([503]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        worker = Worker(clock=clock, rng=lambda: 0.5)
        started = clock.now
        waits = []
        worker.run_once()
        while (delivery := only_delivery(tenant)).status == "pending":
            waits.append(delivery.next_attempt_at - clock.now)
            clock.now = delivery.next_attempt_at
            worker.run_once()
            assert len(waits) < 200
        assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
        assert delivery.attempts == len(receiver.requests) == len(waits) + 1
        assert clock.now - started >= timedelta(hours=24), "retries span at least 24 h"
        assert waits[:4] == [timedelta(seconds=s * 0.75) for s in (10, 20, 40, 80)], "exponential, jittered"
        assert max(waits) <= timedelta(hours=1)


def test_backoff__jitter__a_random_half_of_the_exponential_delay(settings):
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 10
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 3600
    assert backoff(3, rng=lambda: 0.0) == timedelta(seconds=20)
    assert backoff(3, rng=lambda: 1.0) == timedelta(seconds=40)
    assert backoff(40, rng=lambda: 1.0) == timedelta(hours=1)


def test_redeliver__failed_delivery__queued_again_and_delivered(tenant, loopback_allowed, clock, settings):
    settings.WEBHOOK_RETRY_HOURS = 0
    with running_receiver([500, 200]) as receiver:
        hook = webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        worker = Worker(clock=clock)
        worker.run_once()
        failed = only_delivery(tenant)
        assert failed.status == "failed" and failed.attempts == 1
        settings.WEBHOOK_RETRY_HOURS = 24
        queued = delivery_redeliver(tenant=tenant, webhook_id=hook.webhook.pk, delivery_id=failed.pk)
        assert queued.status == "pending"
        clock.now = queued.next_attempt_at
        worker.run_once()
        delivered = only_delivery(tenant)
        assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("succeeded", 2, 200)
        assert len(receiver.requests) == 2


def test_fan_out__patterns_choose_the_events__each_once_across_runs(tenant, loopback_allowed, clock):
    with running_receiver([200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["segment.deleted"]})
        everything = webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        make_segment(tenant, "beta")
        segment_delete(tenant=tenant, key="beta", actor="system:test", expected_version=None)
        worker = Worker(clock=clock)
        assert worker.fan_out() == 3
        assert worker.fan_out() == 0, "the cursor moved: nothing is fanned out twice"
        types = sorted(WebhookDelivery.objects.for_tenant(tenant).values_list("webhook_id", "event_type"))
        hook_id = everything.webhook.pk
        assert types == sorted(
            [(hook_id - 1, "segment.deleted"), (hook_id, "segment.created"), (hook_id, "segment.deleted")]
        )


def test_fan_out__webhook_created_later__hears_only_later_events(tenant, loopback_allowed, clock):
    make_flag(tenant, "before")
    with running_receiver([200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "after")
        Worker(clock=clock).run_once()
        assert [json.loads(r.body)["key"] for r in receiver.requests] == ["after"]


def test_fan_out__inactive_webhook__skips_the_events_of_its_pause(tenant, loopback_allowed, clock):
    with running_receiver([200]) as receiver:
        hook = webhook_create(
            tenant=tenant, data={"url": receiver.url, "events": ["flag.*"], "active": False}
        )
        make_flag(tenant, "paused")
        worker = Worker(clock=clock)
        worker.run_once()
        webhook_update(tenant=tenant, webhook_id=hook.webhook.pk, data={"active": True})
        make_flag(tenant, "resumed")
        worker.run_once()
        assert [json.loads(r.body)["key"] for r in receiver.requests] == ["resumed"]


def test_fan_out__other_tenants_events__never_delivered(tenant, other_tenant, loopback_allowed, clock):
    with running_receiver([200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        make_flag(other_tenant, "theirs")
        assert Worker(clock=clock).run_once() == 0
        assert receiver.requests == []


def test_worker__redirect__not_followed_and_counted_as_a_failure(tenant, loopback_allowed, clock):
    with running_receiver([(302, {"Location": "http://127.0.0.1:9/elsewhere"}, b"")]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        make_flag(tenant, "checkout")
        Worker(clock=clock).run_once()
        delivery = only_delivery(tenant)
        assert (delivery.status, delivery.last_status_code) == ("pending", 302)
        assert "redirects are not followed" in delivery.last_error
        assert len(receiver.requests) == 1


def test_worker__large_answer__read_at_most_64_kib_and_a_2xx_succeeds(tenant, loopback_allowed, clock):
    with running_receiver([(200, {}, b"x" * (4 * 1024 * 1024))]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        make_flag(tenant, "checkout")
        Worker(clock=clock).run_once()
        assert only_delivery(tenant).status == "succeeded"


def test_worker__name_resolving_to_loopback__refused_at_delivery_and_nothing_sent(
    tenant, loopback_allowed, clock, settings
):
    with running_receiver([200]) as receiver:
        webhook_create(
            tenant=tenant, data={"url": f"http://localhost:{receiver.port}/hook", "events": ["flag.*"]}
        )
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = (
            False  # the operator turns it off after the webhook was made
        )
        make_flag(tenant, "checkout")
        Worker(clock=clock).run_once()
        delivery = only_delivery(tenant)
        assert delivery.status == "pending" and delivery.last_status_code is None
        assert "loopback" in delivery.last_error and "localhost" in delivery.last_error
        assert receiver.requests == []


def test_worker__prunes_events_past_retention_periodically(tenant, settings, clock):
    settings.EVENT_RETENTION_DAYS = 7
    settings.WORKER_PRUNE_INTERVAL_SECONDS = 3600
    make_flag(tenant, "old")
    make_flag(tenant, "recent")
    events = ChangeEvent.objects.for_tenant(tenant)
    events.filter(entity_key="old").update(ts=clock.now - timedelta(days=8))
    events.filter(entity_key="recent").update(ts=clock.now - timedelta(days=6, hours=23, minutes=30))
    worker = Worker(clock=clock)

    worker.prune_if_due()
    assert sorted(events.values_list("entity_key", flat=True)) == ["recent"]
    clock.advance(
        minutes=59
    )  # "recent" is past retention now, but the next prune is due an hour after the last
    worker.prune_if_due()
    assert events.filter(entity_key="recent").exists()
    clock.advance(minutes=1)
    worker.run_once()
    assert not events.exists()


def test_worker__prunes_settled_deliveries_past_retention_and_never_a_pending_one(
    tenant, loopback_allowed, clock, settings
):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    with running_receiver([200, 200, 200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        for key in ("succeeded-old", "failed-old", "pending-old", "succeeded-recent"):
            make_flag(tenant, key)
        Worker(clock=clock).run_once()
    deliveries = WebhookDelivery.objects.for_tenant(tenant)
    by_key = {d.payload["key"]: d.pk for d in deliveries}
    old = clock.now - timedelta(days=31)
    deliveries.filter(pk=by_key["succeeded-old"]).update(status="succeeded", last_attempt_at=old)
    deliveries.filter(pk=by_key["failed-old"]).update(status="failed", last_attempt_at=old)
    deliveries.filter(pk=by_key["pending-old"]).update(status="pending", last_attempt_at=old)
    deliveries.filter(pk=by_key["succeeded-recent"]).update(
        status="succeeded", last_attempt_at=clock.now - timedelta(days=29)
    )

    Worker(clock=clock).prune_if_due()

    remaining = {d.payload["key"] for d in deliveries.all()}
    assert remaining == {"pending-old", "succeeded-recent"}


def test_worker__secret_key_lost__attempt_recorded_as_failed_and_the_worker_goes_on(
    tenant, loopback_allowed, clock, settings
):
    with running_receiver([200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["*"]})
        settings.WEBHOOK_SECRET_KEYS = [Fernet.generate_key().decode()]  # the operator replaced the key
        make_flag(tenant, "checkout")
        assert Worker(clock=clock).run_once() == 2
        delivery = only_delivery(tenant)
        assert delivery.status == "pending" and "cannot be decrypted" in delivery.last_error
        assert receiver.requests == []


def test_worker__name_in_the_url__connects_to_the_checked_address_and_keeps_the_host_header(
    tenant, loopback_allowed, clock
):
    with running_receiver([200]) as receiver:
        webhook_create(
            tenant=tenant, data={"url": f"http://localhost:{receiver.port}/hook?x=1", "events": ["*"]}
        )
        make_flag(tenant, "checkout")
        Worker(clock=clock).run_once()
        (request,) = receiver.requests
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    assert request.path == "/hook?x=1"
    assert only_delivery(tenant).status == "succeeded"
