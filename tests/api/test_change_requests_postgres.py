"""Four eyes on real PostgreSQL: two applies of one approved change request at once → exactly one applies."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEntry
from flags.models import ChangeRequest, Flag
from tests.api.test_concurrency_postgres import run_concurrently
from tests.factories import make_flag

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]


def test_two_concurrent_applies_of_one_request__exactly_one_applies(make_api: Any, tenant: Any) -> None:
    make_flag(tenant, "guarded", state="off", protected=True)
    author = make_api(tenant, ("flags:read", "flags:write"))
    reviewer = make_api(tenant, ("flags:read", "flags:write", "flags:approve"))
    cr = author.patch("/v1/flags/guarded", {"state": "on"}, format="json").json()
    assert reviewer.post(f"/v1/change-requests/{cr['id']}/approve").status_code == 200
    appliers = iter([author, reviewer])
    lock = threading.Lock()

    def apply() -> int:
        with lock:
            client = next(appliers)
        return int(client.post(f"/v1/change-requests/{cr['id']}/apply").status_code)

    statuses = run_concurrently(2, apply)
    assert Counter(statuses) == Counter({200: 1, 409: 1})
    flag = Flag.objects.for_tenant(tenant).get(key="guarded")
    assert (flag.state, flag.version) == ("on", 2)
    assert AuditEntry.objects.for_tenant(tenant).filter(entity="flag", action="update").count() == 1
    assert ChangeRequest.objects.for_tenant(tenant).get(pk=int(cr["id"])).status == "applied"


def test_concurrent_writes_of_one_author__one_open_request(make_api: Any, tenant: Any) -> None:
    make_flag(tenant, "guarded", state="off", protected=True)
    writer = make_api(tenant, ("flags:read", "flags:write"))
    token = writer._credentials  # one API client (one author), four HTTP clients
    clients = []
    for _ in range(4):
        client = type(writer)()
        client.credentials(**token)
        clients.append(client)
    lock = threading.Lock()
    pool = iter(clients)

    def write() -> int:
        with lock:
            client = next(pool)
        return int(client.patch("/v1/flags/guarded", {"state": "on"}, format="json").status_code)

    statuses = run_concurrently(4, write)
    assert statuses == [202] * 4
    assert ChangeRequest.objects.for_tenant(tenant).count() == 1
