"""GET /v1/events against real processes: writes served by gunicorn, the stream by the stream process
(`python -m flagsvc.stream`, uvicorn), one PostgreSQL, with and without Redis (api.md, Change events)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from tests.e2e.conftest import ADMIN_URL, allow_connections
from tests.e2e.server import (
    DEFAULT_SCOPES,
    Server,
    StreamServer,
    bootstrap_tenant,
    free_port,
    manage,
    service_env,
)
from tests.e2e.sse import SseClient

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SCOPES = (*DEFAULT_SCOPES, "events:read")


@dataclass
class Stack:
    env: dict[str, str]
    database_url: str
    web: Server
    stream: StreamServer

    def client(self, tenant: str, scopes: tuple[str, ...] = SCOPES) -> dict[str, str]:
        client = bootstrap_tenant(self.env, tenant, scopes)
        _, _, body = self.web.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": tenant}

    def write_flag(self, headers: dict[str, str], key: str) -> None:
        status, _, body = self.web.request("POST", "/v1/flags", {"key": key}, headers)
        assert status == 201, body

    def subscribe(self, headers: dict[str, str], **extra: str) -> SseClient:
        subscriber = SseClient(self.stream.port, {**headers, **extra})
        assert subscriber.status == 200
        opening = subscriber.next(events_only=False)
        assert opening.comment == "events"
        return subscriber


@pytest.fixture(scope="module", params=["redis", "database-only"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    name = f"flagsvc_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"postgres://postgres@127.0.0.1:5432/{name}"
    extra = {"EVENTS_KEEPALIVE_SECONDS": "1"}
    if request.param == "redis":
        extra |= {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}"}
    env = service_env(database_url, **extra)
    manage(env, "migrate", "--noinput")
    logs = tmp_path_factory.mktemp("events")
    stream = StreamServer(env).start(logs / "stream.log")
    web = Server(env, events_port=stream.port).start(logs / "web.log")  # relays streams asked of it
    try:
        yield Stack(env, database_url, web, stream)
    finally:
        stream.stop()
        web.stop()
        allow_connections(name, allow=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_stream__write_served_by_gunicorn__reaches_the_stream_process_within_one_second(stack):
    headers = stack.client(_tenant())
    subscriber = stack.subscribe(headers)
    try:
        written = time.monotonic()
        stack.write_flag(headers, "fresh")
        frame = subscriber.next(timeout=5)
        assert frame.event == "flag.created"
        document = json.loads(frame.data or "")
        assert document["key"] == "fresh" and document["id"] == frame.id
        assert frame.arrived - written < 1.0, "the event took longer than 1 s to reach the stream"
    finally:
        subscriber.close()


def test_stream__resume_after_a_dropped_connection__loses_and_repeats_nothing(stack):
    headers = stack.client(_tenant())
    subscriber = stack.subscribe(headers)
    for n in range(3):
        stack.write_flag(headers, f"f{n}")
    seen = subscriber.events(2)
    subscriber.close()  # dropped with one event unread
    for n in range(3, 5):
        stack.write_flag(headers, f"f{n}")

    resumed = stack.subscribe(headers, **{"Last-Event-ID": seen[-1].id or ""})
    try:
        rest = resumed.events(3)
        keys = [json.loads(frame.data or "")["key"] for frame in seen + rest]
        assert keys == ["f0", "f1", "f2", "f3", "f4"]
        assert resumed.none_within(1.5), "an event was sent twice or out of thin air"
        after = SseClient(stack.stream.port, headers, path=f"/v1/events?after={seen[0].id}")
        try:
            frames = after.events(4)
            assert [json.loads(frame.data or "")["key"] for frame in frames] == ["f1", "f2", "f3", "f4"]
        finally:
            after.close()
    finally:
        resumed.close()


def test_stream__another_tenant__never_sees_the_events(stack):
    headers_a = stack.client(_tenant())
    headers_b = stack.client(_tenant())
    stack.write_flag(headers_a, "first")
    _, _, page = stack.web.request(
        "GET", "/v1/events?after=0", None, {**headers_a, "Accept": "application/json"}
    )
    cursor_of_a = page["events"][0]["id"]
    subscriber_a = stack.subscribe(headers_a)
    subscriber_b = stack.subscribe(headers_b)
    subscriber_b_with_a_cursor = stack.subscribe(headers_b, **{"Last-Event-ID": cursor_of_a})
    try:
        stack.write_flag(headers_a, "secret")
        assert json.loads(subscriber_a.next().data or "")["key"] == "secret"
        assert subscriber_b.none_within(1.5)
        assert subscriber_b_with_a_cursor.next().event == "reset"
        assert subscriber_b_with_a_cursor.none_within(0.5)
    finally:
        for subscriber in (subscriber_a, subscriber_b, subscriber_b_with_a_cursor):
            subscriber.close()


def test_stream__cursor_older_than_retention__reset_first_then_new_events(stack):
    headers = stack.client(_tenant())
    stack.write_flag(headers, "old")
    stack.write_flag(headers, "newer")
    _, _, page = stack.web.request(
        "GET", "/v1/events?after=0", None, {**headers, "Accept": "application/json"}
    )
    old_cursor = page["events"][0]["id"]
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE audit_changeevent SET ts = now() - interval '30 days' WHERE id = %s", [int(old_cursor)]
        )
    manage(
        stack.env,
        "shell",
        "-c",
        "from django.utils import timezone; from audit.outbox import prune_events; prune_events(timezone.now())",
    )

    subscriber = stack.subscribe(headers, **{"Last-Event-ID": old_cursor})
    try:
        reset = subscriber.next()
        assert reset.event == "reset" and reset.id == page["events"][1]["id"]
        stack.write_flag(headers, "after-reset")
        assert json.loads(subscriber.next().data or "")["key"] == "after-reset"
    finally:
        subscriber.close()


def test_stream__quiet__keep_alive_comment_every_interval(stack):
    subscriber = stack.subscribe(stack.client(_tenant()))
    try:
        frame = subscriber.next(timeout=3, events_only=False)
        assert frame.comment == "keep-alive"
    finally:
        subscriber.close()


def test_stream__without_the_scope__403_in_the_error_shape(stack):
    headers = stack.client(_tenant(), scopes=("flags:read",))
    subscriber = SseClient(stack.stream.port, headers)
    try:
        assert subscriber.status == 403
        body = json.loads(subscriber.response.read())
        assert body["error"]["code"] == "insufficient_scope"
    finally:
        subscriber.close()


def test_stream_asked_of_gunicorns_port__relayed_to_the_stream_process(stack):
    """api.md names one base URL: a subscriber that asks gunicorn gets the same stream."""
    headers = stack.client(_tenant())
    subscriber = SseClient(stack.web.port, headers)
    try:
        assert subscriber.status == 200, subscriber.body()
        assert (subscriber.response.getheader("Content-Type") or "").startswith("text/event-stream")
        assert subscriber.next(events_only=False).comment == "events"
        stack.write_flag(headers, "relayed")
        frame = subscriber.next(timeout=5)
        assert frame.event == "flag.created"
        assert json.loads(frame.data or "")["key"] == "relayed"
        assert subscriber.next(events_only=False, timeout=5).comment is not None, "keep-alive comments pass"
    finally:
        subscriber.close()


def test_stream_relayed__another_tenant_and_a_missing_token__as_on_the_stream_process(stack):
    headers_a = stack.client(_tenant())
    headers_b = stack.client(_tenant())
    subscriber_b = SseClient(stack.web.port, headers_b)
    try:
        assert subscriber_b.status == 200
        stack.write_flag(headers_a, "secret")
        assert subscriber_b.none_within(1.5)
    finally:
        subscriber_b.close()
    anonymous = SseClient(stack.web.port, {"X-Tenant-ID": "acme"})
    try:
        assert anonymous.status == 401
        assert json.loads(anonymous.body())["error"]["code"] == "unauthenticated"
    finally:
        anonymous.close()


def test_json_poll_on_gunicorns_port__served_by_gunicorn_not_relayed(stack):
    headers = stack.client(_tenant())
    stack.write_flag(headers, "polled")
    status, _, page = stack.web.request(
        "GET", "/v1/events?after=0", None, {**headers, "Accept": "application/json"}
    )
    assert status == 200
    assert [event["key"] for event in page["events"]] == ["polled"]


def test_stream_relayed__stream_process_not_answering__503_with_retry_after_and_the_callers_id(
    stack, tmp_path
):
    headers = stack.client(_tenant())
    web = Server(stack.env, events_port=free_port()).start(tmp_path / "web.log")  # nothing listens there
    try:
        subscriber = SseClient(web.port, {**headers, "X-Request-ID": "sse-1"})
        assert subscriber.status == 503
        assert subscriber.response.getheader("Retry-After") == "2"
        assert subscriber.response.getheader("X-Request-ID") == "sse-1"
        error = json.loads(subscriber.body())["error"]
        assert error["code"] == "unavailable"
        subscriber.close()
    finally:
        web.stop()
    lines = [
        json.loads(line) for line in (tmp_path / "web.log").read_text().splitlines() if line.startswith("{")
    ]
    [access] = [
        line for line in lines if line.get("logger") == "flagsvc.access" and line["path"] != "/healthz"
    ]
    assert (access["status"], access["path"], access["request_id"]) == (503, "/v1/events", "sse-1")


def test_stream_relay__every_slot_taken__406_naming_the_stream_process(stack, tmp_path):
    headers = stack.client(_tenant())
    web = Server({**stack.env, "EVENTS_RELAY_MAX": "1"}, events_port=stack.stream.port)
    web.start(tmp_path / "web.log")
    first = SseClient(web.port, headers)
    try:
        assert first.status == 200
        second = SseClient(web.port, headers)
        assert second.status == 406
        assert json.loads(second.body())["error"]["code"] == "not_acceptable"
        second.close()
    finally:
        first.close()
        web.stop()
