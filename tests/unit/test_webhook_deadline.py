"""The timeout of a webhook attempt is a deadline for the whole attempt (api.md, Webhooks: "A 2xx within
5 s is a success"): connecting, sending, the status line, the headers and the body together. A receiver
that drips its answer a byte at a time never trips a per-read timeout; it must not be recorded as a
success, nor hold the single worker (every tenant's deliveries) for as long as it likes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import pytest

from tests.factories import make_flag
from tests.receiver import running_receiver
from tests.webhook_worker_support import Clock
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_create
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

FAST_204 = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    """Bytes to answer with: `head` at once, then `drip` one byte every `interval` seconds."""

    head: bytes = b""
    drip: bytes = b""
    interval: float = 0.0


@dataclass
class DripReceiver:
    """A loopback receiver on a raw socket, so that it can send an answer as slowly as it likes.
    The n-th connection gets `answers[n]` (the last one repeats)."""

    answers: list[Answer]
    port: int = 0
    requests: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def serve(self, listener: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            answer = self.answers[min(self.requests, len(self.answers) - 1)]
            self.requests += 1
            threading.Thread(target=self.answer, args=(connection, answer), daemon=True).start()

    def answer(self, connection: socket.socket, answer: Answer) -> None:
        with connection:
            try:
                read_request(connection)
                connection.sendall(answer.head)
                for byte in answer.drip:
                    if self.stopped.wait(answer.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the worker hung up: what a deadline does


def read_request(connection: socket.socket) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


@contextmanager
def drip_receiver(answers: list[Answer]) -> Iterator[DripReceiver]:
    receiver = DripReceiver(answers=answers)
    listener = socket.create_server(("127.0.0.1", 0))
    receiver.port = listener.getsockname()[1]
    thread = threading.Thread(target=receiver.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopped.set()
        with suppress(OSError):  # wakes the accept() the thread waits in; closing alone does not
            socket.create_connection(("127.0.0.1", receiver.port), timeout=1).close()
        thread.join(timeout=5)
        listener.close()


def padded_head(status: bytes, body_length: int, header_bytes: int) -> bytes:
    """A status line and headers of about `header_bytes` bytes (a long padding header), then the blank line."""
    start = status + b"\r\nContent-Length: " + str(body_length).encode() + b"\r\nX-Padding: "
    return start + b"p" * max(header_bytes - len(start) - 4, 0) + b"\r\n\r\n"


def only_delivery(tenant) -> WebhookDelivery:
    return WebhookDelivery.objects.for_tenant(tenant).get()


def test_delivery__receiver_drips_a_2xx_past_the_deadline__failed_attempt_retried(
    tenant, loopback_allowed, settings
):
    # Given: the documented 5 s, and a receiver that sends "HTTP/1.1 200 OK ..." a byte every 0.25 s
    # (14 s in all), then answers the retry at once
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    dripping = Answer(drip=padded_head(b"HTTP/1.1 200 OK", 2, 56) + b"ok", interval=0.25)
    clock = Clock()
    with drip_receiver([dripping, Answer(head=FAST_204)]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        worker = Worker(clock=clock, rng=lambda: 1.0)

        # When
        worker.run_once()

        # Then: a failed attempt at the deadline, due again after the normal backoff
        timed_out = only_delivery(tenant)
        assert (timed_out.status, timed_out.attempts, timed_out.last_status_code) == ("pending", 1, None)
        assert timed_out.last_error.startswith("timed out: no complete answer within the 5 s deadline")
        assert timed_out.duration_ms < 10_000, "a safety bound only: the drip alone would take 14 s"

        clock.now = timed_out.next_attempt_at
        worker.run_once()
        delivered = only_delivery(tenant)
        assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("succeeded", 2, 204)
        assert receiver.requests == 2


def test_delivery__receiver_drips_the_body_of_a_2xx_past_the_deadline__failed_attempt(
    tenant, loopback_allowed
):
    """The status and headers come at once; the body they announce does not come within the deadline."""
    slow_body = Answer(head=b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n", drip=b"x" * 60, interval=0.1)
    with drip_receiver([slow_body]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")

        Worker(clock=Clock(), timeout=1.0).run_once()

    delivery = only_delivery(tenant)
    assert (delivery.status, delivery.last_status_code) == ("pending", None)
    assert delivery.last_error.startswith("timed out: no complete answer within the 1 s deadline")


def test_delivery__receiver_slow_but_within_the_deadline__succeeded(tenant, loopback_allowed):
    # Given: a whole answer dripped over about two thirds of a second, well inside the 5 s
    with drip_receiver([Answer(drip=FAST_204, interval=0.01)]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")

        Worker(clock=Clock(), timeout=5.0).run_once()

    delivery = only_delivery(tenant)
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("succeeded", 204, "")


def test_delivery__fast_2xx__succeeded(tenant, loopback_allowed):
    with running_receiver([200]) as receiver:
        webhook_create(tenant=tenant, data={"url": receiver.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")

        Worker(clock=Clock()).run_once()

        assert len(receiver.requests) == 1
    delivery = only_delivery(tenant)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.last_error == "" and delivery.next_attempt_at is None


def test_delivery__one_receiver_drips__another_tenants_delivery_in_the_same_pass_still_made(
    tenant, other_tenant, loopback_allowed
):
    """The deadline is what bounds how long one receiver holds the worker from everyone else."""
    dripping = Answer(drip=padded_head(b"HTTP/1.1 200 OK", 0, 200), interval=0.05)  # 10 s
    with drip_receiver([dripping]) as slow, running_receiver([204]) as fast:
        webhook_create(tenant=tenant, data={"url": slow.url, "events": ["flag.*"]})
        webhook_create(tenant=other_tenant, data={"url": fast.url, "events": ["flag.*"]})
        make_flag(tenant, "checkout")
        make_flag(other_tenant, "checkout")
        started = time.monotonic()

        Worker(clock=Clock(), timeout=1.0).run_once()

        assert time.monotonic() - started < 8, "a safety bound only: the drip alone would take 10 s"
    assert only_delivery(tenant).status == DeliveryStatus.PENDING
    assert only_delivery(tenant).last_error.startswith("timed out")
    assert only_delivery(other_tenant).status == DeliveryStatus.SUCCEEDED
