"""Concurrent writes on real PostgreSQL: the database, not luck, keeps one flag and one audit row."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection, connections

from audit.models import AuditEntry
from flags.models import Flag

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]


def run_concurrently(count: int, action: Any) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            status = action()
            with lock:
                statuses.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def test_twenty_identical_creates__one_flag_one_audit_row(make_api, tenant):
    clients = [make_api(tenant) for _ in range(20)]
    body = {"key": "race", "state": "on", "tags": ["t"]}
    iterator = iter(clients)
    lock = threading.Lock()

    def create() -> int:
        with lock:
            client = next(iterator)
        return client.post("/v1/flags", body, format="json").status_code

    statuses = run_concurrently(20, create)
    assert Counter(statuses) == Counter({201: 1, 200: 19})
    assert Flag.objects.for_tenant(tenant).filter(key="race").count() == 1
    assert AuditEntry.objects.for_tenant(tenant).filter(entity_key="race").count() == 1


def test_concurrent_updates_with_the_same_if_match__exactly_one_succeeds(make_api, tenant, api):
    api.post("/v1/flags", {"key": "race"}, format="json")
    clients = iter([make_api(tenant) for _ in range(10)])
    lock = threading.Lock()
    counter = iter(range(10))

    def update() -> int:
        with lock:
            client, number = next(clients), next(counter)
        response = client.patch(
            "/v1/flags/race", {"name": f"writer {number}"}, format="json", HTTP_IF_MATCH='"1"'
        )
        return response.status_code

    statuses = run_concurrently(10, update)
    assert Counter(statuses) == Counter({200: 1, 412: 9})
    flag = Flag.objects.for_tenant(tenant).get(key="race")
    assert flag.version == 2
    assert AuditEntry.objects.for_tenant(tenant).filter(entity_key="race", action="update").count() == 1


def test_audit_table__database_refuses_update_and_delete(api, tenant):
    api.post("/v1/flags", {"key": "f"}, format="json")
    entry_id = AuditEntry.objects.for_tenant(tenant).get().pk
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET actor = 'forged' WHERE id = %s", [entry_id])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entry_id])
    assert AuditEntry.objects.for_tenant(tenant).get().actor.startswith("client:")


def _clients_of_one_caller(tenant: Any, count: int) -> list[Any]:
    """`count` HTTP clients that all carry one API client's token: one actor, as a retrying caller."""
    from rest_framework.test import APIClient

    from tests.conftest import token_for

    _, token = token_for(tenant)
    clients = []
    for _ in range(count):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID=tenant.slug)
        clients.append(client)
    return clients


def test_idempotency_key__twenty_concurrent_creates_with_other_bodies__one_flag_one_audit_row(tenant):
    clients = iter(_clients_of_one_caller(tenant, 20))
    numbers = iter(range(20))
    lock = threading.Lock()
    answers: list[tuple[int, dict[str, Any]]] = []

    def create() -> int:
        with lock:
            client, number = next(clients), next(numbers)
        response = client.post(
            "/v1/flags",
            {"key": f"race-{number}", "state": "on"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="one-key",
        )
        with lock:
            answers.append((response.status_code, response.json()))
        return response.status_code

    statuses = run_concurrently(20, create)

    assert Counter(statuses) == Counter({201: 1, 409: 19})
    assert all(body["error"]["code"] == "conflict" for status, body in answers if status == 409)
    assert Flag.objects.for_tenant(tenant).count() == 1
    assert AuditEntry.objects.for_tenant(tenant).count() == 1


def test_idempotency_key__twenty_concurrent_identical_creates__one_creation_others_replay_or_in_flight(
    tenant,
):
    clients = iter(_clients_of_one_caller(tenant, 20))
    lock = threading.Lock()
    answers: list[tuple[int, bool, dict[str, Any]]] = []

    def create() -> int:
        with lock:
            client = next(clients)
        response = client.post(
            "/v1/flags", {"key": "race", "state": "on"}, format="json", HTTP_IDEMPOTENCY_KEY="one-key"
        )
        with lock:
            answers.append(
                (response.status_code, response.has_header("Idempotent-Replayed"), response.json())
            )
        return response.status_code

    run_concurrently(20, create)

    created = [a for a in answers if a[0] == 201 and not a[1]]
    replayed = [a for a in answers if a[0] == 201 and a[1]]
    in_flight = [a for a in answers if a[0] == 409 and a[2]["error"]["details"].get("in_flight") is True]
    assert len(created) == 1, answers
    assert len(replayed) + len(in_flight) == 19, answers
    assert all(a[2] == created[0][2] for a in replayed)
    assert Flag.objects.for_tenant(tenant).count() == 1
    assert AuditEntry.objects.for_tenant(tenant).count() == 1
