"""`Idempotency-Key` (api.md, Flags): the key is claimed in the database before the work is done.

The concurrent cases (20 requests at once on PostgreSQL) are in test_concurrency_postgres.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from flags.models import Flag
from tenancy.models import IdempotentResponse
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

FLAG = {"key": "checkout", "state": "on"}


@pytest.fixture
def caller(tenant) -> tuple[APIClient, str]:
    """An API client and the actor its requests are recorded as."""
    client_id, token = token_for(tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID=tenant.slug)
    return client, f"client:{client_id}"


def _claim_in_flight(tenant, actor: str, key: str, body: dict, age: timedelta = timedelta(0)) -> None:
    """What a request that is still working (or whose worker died) leaves behind: a claim, no response."""
    fingerprint = hashlib.sha256(
        json.dumps(["POST", "/v1/flags", body], sort_keys=True, default=str).encode()
    ).hexdigest()
    claim = IdempotentResponse.objects.create(
        tenant=tenant, actor=actor, key=key, request_fingerprint=fingerprint, headers={}
    )
    IdempotentResponse.all_tenants.filter(pk=claim.pk).update(created_at=timezone.now() - age)


def test_idempotency_key__same_request_while_first_in_flight__409_in_flight_creates_nothing(caller, tenant):
    api, actor = caller
    _claim_in_flight(tenant, actor, "k-busy", FLAG)

    response = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-busy")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"idempotency_key": "k-busy", "in_flight": True}
    assert not Flag.objects.for_tenant(tenant).exists()


def test_idempotency_key__other_request_while_first_in_flight__409_reused_creates_nothing(caller, tenant):
    api, actor = caller
    _claim_in_flight(tenant, actor, "k-busy", FLAG)

    response = api.post("/v1/flags", {"key": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-busy")

    assert response.status_code == 409
    assert "different request" in response.json()["error"]["message"]
    assert not Flag.objects.for_tenant(tenant).exists()


def test_idempotency_key__claim_of_a_request_that_never_finished__is_freed_after_the_in_flight_bound(
    caller, tenant
):
    api, actor = caller
    with override_settings(IDEMPOTENCY_IN_FLIGHT_SECONDS=60):
        _claim_in_flight(tenant, actor, "k-dead", FLAG, age=timedelta(seconds=61))
        response = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-dead")

    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert IdempotentResponse.all_tenants.get(key="k-dead").status == 201


def test_idempotency_key__first_request_refused__frees_the_key_for_a_corrected_request(api, tenant):
    refused = api.post("/v1/flags", {"key": "bad key"}, format="json", HTTP_IDEMPOTENCY_KEY="k-fix")
    assert refused.status_code == 422
    assert not IdempotentResponse.all_tenants.filter(key="k-fix").exists()

    corrected = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-fix")

    assert corrected.status_code == 201
    assert AuditEntry.objects.for_tenant(tenant).filter(entity_key="checkout").count() == 1


def test_idempotency_key__replay__returns_stored_headers_and_body(api, tenant):
    first = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["ETag"] == first["ETag"]
    assert replay["Location"] == first["Location"] == "/v1/flags/checkout"
    assert replay.json() == first.json()
