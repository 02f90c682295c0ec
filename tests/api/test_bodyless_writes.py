"""Write routes that read no body (approve, restore, pause, rotate-secret...) still refuse one that is
not JSON, with the 400 every route gives (api.md, Conventions), and change nothing; no body, or a JSON
body, is accepted as before."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from flags.models import Flag
from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def test_restore__body_not_json__400_flag_stays_archived(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "checkout")
    assert api.delete("/v1/flags/checkout").status_code == 204
    response = api.post("/v1/flags/checkout/restore", data=b"{x", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert Flag.objects.for_tenant(tenant).get(key="checkout").archived_at is not None


def test_restore__no_body_or_an_empty_object__restored(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "a")
    make_flag(tenant, "b")
    api.delete("/v1/flags/a")
    api.delete("/v1/flags/b")
    assert api.post("/v1/flags/a/restore").status_code == 200
    assert api.post("/v1/flags/b/restore", data=b"{}", content_type="application/json").status_code == 200


def test_archive__body_not_json__400_flag_stays_live(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "checkout")
    response = api.delete("/v1/flags/checkout", data=b"\xff\xfe", content_type="application/json")
    assert response.status_code == 400
    assert Flag.objects.for_tenant(tenant).get(key="checkout").archived_at is None


def test_webhook_rotate_secret__body_not_json__400(api: APIClient) -> None:
    created = api.post(
        "/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["flag.*"]}, format="json"
    )
    assert created.status_code == 201, created.content
    webhook_id = created.json()["id"]
    response = api.post(
        f"/v1/webhooks/{webhook_id}/rotate-secret", data=b"not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
