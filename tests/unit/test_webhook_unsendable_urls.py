"""A webhook URL the worker cannot send (api.md, Webhooks; ADR 0013).

Such a URL is refused on create and update (tests/api/test_webhooks.py), but a row stored before that
check existed, or written around it, must still end like any failed delivery: an attempt recorded with
its reason, retried, then `failed`; never an exception that stops the worker's pass and leaves the other
deliveries of the batch (other tenants' too) leased and unsent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import make_flag
from tests.receiver import running_receiver
from tests.webhook_worker_support import Clock
from webhooks import worker as worker_module
from webhooks.delivery import Outcome, send
from webhooks.destinations import parse
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.services import webhook_create
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db


def store_url_unchecked(tenant, webhook_id: int, url: str) -> None:
    """As a row written before the URL check existed: straight to the table, no service."""
    Webhook.objects.for_tenant(tenant).filter(pk=webhook_id).update(url=url)


def only_delivery(tenant) -> WebhookDelivery:
    return WebhookDelivery.objects.for_tenant(tenant).get()


def test_worker__stored_url_with_a_control_character__failed_attempt_and_another_tenant_still_delivered(
    tenant, other_tenant, loopback_allowed
):
    clock = Clock()
    with running_receiver([204]) as receiver:
        # Given: a webhook of acme's whose stored URL holds U+0001, claimed first in the batch
        bad = webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        store_url_unchecked(tenant, bad.webhook.pk, f"http://127.0.0.1:{receiver.port}/x\x01y")
        webhook_create(tenant=other_tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        make_flag(other_tenant, "checkout")
        worker = Worker(clock=clock, rng=lambda: 1.0)

        # When: one pass
        worker.run_once()

        # Then: acme's attempt is recorded as failed with its reason, and globex's is delivered
        failed = only_delivery(tenant)
        assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, None)
        assert "control character (U+0001)" in failed.last_error, failed.last_error
        assert failed.last_error.startswith("refused: ")
        assert failed.lease_token is None
        assert failed.next_attempt_at == clock.now + timedelta(seconds=10), "the normal backoff"
        assert only_delivery(other_tenant).status == DeliveryStatus.SUCCEEDED, (
            "the bad row must not hold up the rest of the batch"
        )
        assert [r.headers["webhook-id"] for r in receiver.requests] == [
            str(only_delivery(other_tenant).event_id)
        ]

        # And: retried with backoff like any failure until the retry window closes, then failed
        while (delivery := only_delivery(tenant)).status == DeliveryStatus.PENDING:
            assert delivery.attempts < 200
            clock.now = delivery.next_attempt_at
            worker.run_once()
        assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
        assert delivery.attempts > 2 and "control character" in delivery.last_error
        assert len(receiver.requests) == 1, "nothing was ever sent to the bad URL"


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("http://127.0.0.1:{port}/x\ty", "whitespace (U+0009)"),
        ("http://127.0.0.1:{port}/x\x7fy", "control character (U+007F)"),
        ("http://127.0.0.1:{port}/x\x85y", "whitespace (U+0085)"),
        ("http://127.0.0.1:{port}/x\u202ey", "invisible formatting character (U+202E)"),
        ("http://exa mple.com:{port}/", "a space (U+0020)"),
        ("http://{label}.example:{port}/", "at most 63 characters"),
        ("http://exa%41mple.com:{port}/", "only letters, digits"),
        ("http://xn--zz.example:{port}/", "Not a valid URL"),
        ("http://127.0.0.1:99999/", "port must be from 1 to 65535"),
        ("http://[fe80::1%25eth0]:{port}/", "zone"),
    ],
)
def test_send__stored_url_it_cannot_send__failed_outcome_with_the_reason_never_an_exception(
    loopback_allowed, stored, reason
):
    with running_receiver([204]) as receiver:
        url = stored.format(port=receiver.port, label="a" * 64)

        outcome = send(url=url, secret="whsec_" + "A" * 32, message_id="1", body="{}", timeout=5.0)

        assert outcome.ok is False and outcome.status_code is None
        assert outcome.error.startswith("refused: ") and reason in outcome.error, outcome.error
        assert outcome.error.isprintable(), "a control character never reaches last_error"
        assert receiver.requests == []


def test_worker__attempt_raises_unexpectedly__failed_attempt_recorded_and_the_batch_goes_on(
    tenant, other_tenant, loopback_allowed, monkeypatch
):
    """The safety net under `send`: whatever a future bug raises, one delivery never stops the others."""
    with running_receiver([204]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url + "/boom", "events": ["flag.*"]})
        webhook_create(tenant=other_tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        make_flag(other_tenant, "checkout")
        real_send = worker_module.send

        def send_that_breaks_on_boom(**kwargs) -> Outcome:
            if kwargs["url"].endswith("/boom"):
                raise RuntimeError("a bug in the sender")
            return real_send(**kwargs)

        monkeypatch.setattr(worker_module, "send", send_that_breaks_on_boom)

        Worker(clock=Clock(), rng=lambda: 1.0).run_once()

        broken = only_delivery(tenant)
        assert (broken.status, broken.attempts, broken.lease_token) == ("pending", 1, None)
        assert broken.last_error == "the attempt could not be made: RuntimeError: a bug in the sender"
        assert only_delivery(other_tenant).status == DeliveryStatus.SUCCEEDED


def test_worker__receiver_error_body_with_nul_and_newlines__recorded_escaped(tenant, loopback_allowed):
    """PostgreSQL refuses a NUL in a text column: stored raw, the receiver's body would make recording
    the outcome raise, and the delivery would stay leased and pending forever."""
    with running_receiver([(500, {}, b"bad\x00news\r\nmore")]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")

        Worker(clock=Clock()).run_once()

    delivery = only_delivery(tenant)
    assert (delivery.status, delivery.last_status_code) == ("pending", 500)
    assert delivery.last_error == "HTTP 500: bad\\x00news\\r\\nmore"


def test_parse__international_host__sent_in_its_ascii_form():
    """The Host header, TLS SNI and DNS query get the IDNA form: a header must be ASCII, and a
    non-ASCII one made httpx raise in the middle of the worker's pass."""
    destination = parse("https://Bücher.example/hook")

    assert (destination.scheme, destination.host, destination.port) == ("https", "xn--bcher-kva.example", 443)


def test_outcome_failure__control_characters_escaped_and_clipped_to_500():
    outcome = Outcome.failure("x\x00" + "y" * 1000, status_code=502, duration_ms=7)

    assert outcome.error.startswith("x\\x00yyy") and len(outcome.error) == 500
    assert (outcome.ok, outcome.status_code, outcome.duration_ms) == (False, 502, 7)
