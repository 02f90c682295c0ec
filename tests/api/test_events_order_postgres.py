"""Cursor order on real PostgreSQL: with concurrent writers, a reader that follows the cursor never
skips an event (ids increase in commit order within a tenant: ADR 0012)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from audit.models import ChangeEvent
from audit.outbox import events_after
from tests.api.test_concurrency_postgres import run_concurrently

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]

WRITERS = 8
WRITES_EACH = 8


def test_events__concurrent_writers__a_cursor_follower_sees_every_event_once_in_order(make_api, tenant):
    clients = [make_api(tenant) for _ in range(WRITERS)]
    for n, client in enumerate(clients):
        assert client.post("/v1/flags", {"key": f"f{n}"}, format="json").status_code == 201
    start = max(ChangeEvent.all_tenants.filter(tenant=tenant).values_list("pk", flat=True))
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        cursor = start
        try:
            while True:
                finished = done.is_set()
                batch = events_after(tenant.pk, cursor, 1000)
                seen.extend(event.pk for event in batch)
                if batch:
                    cursor = batch[-1].pk
                elif finished:
                    return
                time.sleep(0.001)
        finally:
            connections.close_all()

    follower = threading.Thread(target=follow)
    follower.start()
    slots = iter(range(WRITERS))
    lock = threading.Lock()

    def write() -> int:
        with lock:
            n = next(slots)
        for version in range(WRITES_EACH):
            response = clients[n].patch(f"/v1/flags/f{n}", {"description": f"v{version}"}, format="json")
            assert response.status_code == 200
        return 200

    assert run_concurrently(WRITERS, write) == [200] * WRITERS
    done.set()
    follower.join(30)

    stored = list(
        ChangeEvent.all_tenants.filter(tenant=tenant, pk__gt=start)
        .order_by("pk")
        .values_list("pk", "ruleset_version")
    )
    assert len(stored) == WRITERS * WRITES_EACH
    assert seen == [pk for pk, _ in stored], "the follower skipped or repeated an event"
    versions = [version for _, version in stored]
    assert versions == list(range(versions[0], versions[0] + len(versions))), "versions not in commit order"
