"""No body is not JSON (api.md, Conventions: 400 `malformed_request`), on every route that takes one:
DRF reads an empty body as `{}`, and a `PUT` of nothing used to reset a flag to its defaults."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from flags.models import Flag
from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

ROUTES = [
    ("post", "/v1/flags"),
    ("put", "/v1/flags/checkout"),
    ("patch", "/v1/flags/checkout"),
    ("post", "/v1/flags/checkout/rollback"),
    ("post", "/v1/flags/checkout/rollouts"),
    ("post", "/v1/segments"),
    ("put", "/v1/segments/beta"),
    ("patch", "/v1/segments/beta"),
    ("post", "/v1/evaluate"),
    ("post", "/v1/evaluate/bulk"),
    ("post", "/v1/evaluate/preview"),
    ("post", "/v1/usage"),
    ("post", "/v1/exposures"),
    ("post", "/v1/webhooks"),
]


@pytest.fixture
def stored(api: APIClient, tenant: Tenant) -> Flag:
    assert api.post("/v1/segments", {"key": "beta"}, format="json").status_code == 201
    return make_flag(tenant, "checkout", name="Checkout", state="on", tags=["pay"])


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_empty_body__400_malformed_request__nothing_written(
    api: APIClient, stored: Flag, tenant: Tenant, method: str, path: str
) -> None:
    entries = AuditEntry.objects.for_tenant(tenant).count()
    response = getattr(api, method)(path, data=b"", content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "malformed_request"
    assert "empty" in error["message"]
    assert AuditEntry.objects.for_tenant(tenant).count() == entries
    flag = Flag.objects.for_tenant(tenant).get(key="checkout")
    assert (flag.version, flag.name, flag.state, flag.tags) == (1, "Checkout", "on", ["pay"])


def test_whitespace_body__400_as_before(api: APIClient, stored: Flag) -> None:
    response = api.put("/v1/flags/checkout", data=b"   ", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_empty_json_object__still_a_valid_patch(api: APIClient, stored: Flag) -> None:
    response = api.patch("/v1/flags/checkout", data=b"{}", content_type="application/json")
    assert response.status_code == 200
    assert response.json()["version"] == 1
