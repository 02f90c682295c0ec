"""Kill switches racing on real PostgreSQL: the tenant's lock, not luck, makes one engage win."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from audit.models import AuditEntry, ChangeEvent
from audit.verification import verify_chain
from flags.models import Flag, KillSwitch
from tests.api.test_concurrency_postgres import run_concurrently

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]

WHY = {"HTTP_X_CHANGE_REASON": "incident"}


def test_ten_concurrent_engages__one_201_nine_409_one_event(make_api, tenant):
    setup = make_api(tenant)
    for key in ("a", "b", "c"):
        setup.post("/v1/flags", {"key": key, "state": "on", "kill_category": "pay"}, format="json")
    clients = iter([make_api(tenant) for _ in range(10)])
    lock = threading.Lock()

    def engage() -> int:
        with lock:
            client = next(clients)
        return client.post("/v1/killswitch/pay", **WHY).status_code

    statuses = run_concurrently(10, engage)

    assert Counter(statuses) == Counter({201: 1, 409: 9})
    assert KillSwitch.objects.for_tenant(tenant).count() == 1
    assert AuditEntry.objects.for_tenant(tenant).filter(action="kill").count() == 3
    assert ChangeEvent.objects.for_tenant(tenant).filter(entity="killswitch").count() == 1
    assert set(Flag.objects.for_tenant(tenant).values_list("state", flat=True)) == {"off"}
    assert verify_chain(tenant=tenant).ok


def test_engage_racing_a_hand_change__release_keeps_what_the_person_did(make_api, tenant):
    api = make_api(tenant)
    api.post("/v1/flags", {"key": "a", "state": "on", "kill_category": "pay"}, format="json")
    api.post("/v1/killswitch/pay", **WHY)
    api.patch("/v1/flags/a", {"state": "on"}, format="json")

    body = api.delete("/v1/killswitch/pay").json()

    assert body["kept"][0]["key"] == "a"
    assert Flag.objects.for_tenant(tenant).get(key="a").state == "on"
    reasons = list(
        AuditEntry.objects.for_tenant(tenant).filter(action="kill").values_list("reason", flat=True)
    )
    assert reasons == ["incident"]
