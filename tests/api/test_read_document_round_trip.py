"""What a GET returns can be sent back: a client's read-modify-write (GET, change a field, PUT) must
not trip over the fields the server computes (`version`, timestamps, `usage`)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def test_put_of_the_get_document__accepted__no_new_version(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "checkout", state="off")
    document = api.get("/v1/flags/checkout").json()
    assert "usage" in document
    response = api.put("/v1/flags/checkout", document, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 1


def test_get_modify_put__one_new_version_with_the_change(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "checkout", state="off")
    document = api.get("/v1/flags/checkout").json()
    document["state"] = "on"
    response = api.put("/v1/flags/checkout", document, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["version"], response.json()["state"]) == (2, "on")


def test_post_of_a_get_document_under_a_new_key__created(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "checkout", state="on")
    document = api.get("/v1/flags/checkout").json()
    document["key"] = "checkout-copy"
    response = api.post("/v1/flags", document, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1


def test_put_of_the_segment_get_document__accepted(api: APIClient) -> None:
    assert api.post("/v1/segments", {"key": "beta", "included": ["u1"]}, format="json").status_code == 201
    document = api.get("/v1/segments/beta").json()
    response = api.put("/v1/segments/beta", document, format="json")
    assert response.status_code == 200, response.content
