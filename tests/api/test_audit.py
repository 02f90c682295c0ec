"""/v1/audit: api.md, Audit."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_audit__newest_first_with_the_documented_fields(api):
    api.post("/v1/flags", {"key": "f"}, format="json", HTTP_X_REQUEST_ID="req-1")
    api.patch("/v1/flags/f", {"state": "on"}, format="json", HTTP_X_REQUEST_ID="req-2")
    body = api.get("/v1/audit").json()
    assert body["count"] == 2
    latest, first = body["results"]
    assert set(latest) == {
        "id",
        "ts",
        "actor",
        "entity",
        "entity_key",
        "action",
        "version",
        "before",
        "after",
        "diff",
        "request_id",
        "reason",
    }
    assert latest["action"] == "update" and first["action"] == "create"
    assert first["before"] is None
    assert latest["diff"] == {"state": {"from": "off", "to": "on"}}
    assert latest["request_id"] == "req-2"
    assert latest["actor"].startswith("client:acme-")
    assert latest["ts"].endswith("Z")


def test_audit__filters(api):
    api.post("/v1/flags", {"key": "f"}, format="json")
    api.post("/v1/segments", {"key": "s"}, format="json")
    api.patch("/v1/flags/f", {"state": "on"}, format="json")
    actor = api.get("/v1/audit").json()["results"][0]["actor"]
    count = lambda q: api.get(f"/v1/audit?{q}").json()["count"]  # noqa: E731
    assert count("entity=flag") == 2
    assert count("entity=segment") == 1
    assert count("entity_key=f") == 2
    assert count("flag_key=f") == 2
    assert count("action=update") == 1
    assert count(f"actor={actor}") == 3
    assert count("actor=user:nobody") == 0
    assert count("since=2000-01-01T00:00:00Z") == 3
    assert count("until=2000-01-01T00:00:00Z") == 0
    assert api.get("/v1/audit?since=yesterday").status_code == 422


def test_audit__no_route_edits_or_deletes_entries(api):
    api.post("/v1/flags", {"key": "f"}, format="json")
    entry_id = api.get("/v1/audit").json()["results"][0]["id"]
    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(f"/v1/audit/{entry_id}", {}, format="json")
        assert response.status_code in (404, 405)
        response = getattr(api, method)("/v1/audit", {}, format="json")
        assert response.status_code == 405


def test_audit__membership_changes__listed_and_filterable(api, tenant, other_tenant):
    from kernel.context import acting_as
    from tenancy.services import person_create

    with acting_as("system:test"):
        person_create(username="carol", tenant=tenant, role="viewer")
        person_create(username="dan", tenant=other_tenant, role="viewer")
    body = api.get("/v1/audit?entity=membership").json()
    assert [(e["entity_key"], e["action"], e["actor"], e["after"]) for e in body["results"]] == [
        ("carol", "create", "system:test", {"person": "carol", "role": "viewer"})
    ], "another tenant's memberships never appear"
    assert api.get("/v1/audit?entity=person").status_code == 422
