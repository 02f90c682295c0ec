"""/v1/segments: api.md, Segments."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

SEGMENT = {
    "key": "beta-testers",
    "description": "Early adopters",
    "included": ["u-1"],
    "excluded": ["u-9"],
    "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
}


def test_segment_crud__create_get_update_delete(api, tenant):
    created = api.post("/v1/segments", SEGMENT, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1
    assert created["ETag"] == '"1"'
    assert api.post("/v1/segments", SEGMENT, format="json").status_code == 200
    assert api.post("/v1/segments", {**SEGMENT, "included": []}, format="json").status_code == 409
    updated = api.patch(
        "/v1/segments/beta-testers", {"included": ["u-1", "u-2"]}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert (
        api.patch(
            "/v1/segments/beta-testers", {"included": []}, format="json", HTTP_IF_MATCH='"1"'
        ).status_code
        == 412
    )
    assert api.delete("/v1/segments/beta-testers").status_code == 204
    assert api.get("/v1/segments/beta-testers").status_code == 404
    actions = list(
        AuditEntry.objects.for_tenant(tenant)
        .filter(entity="segment")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]
    deleted = AuditEntry.objects.for_tenant(tenant).get(action="delete")
    assert deleted.after is None and deleted.before["key"] == "beta-testers"


def test_segment_delete__refused_while_a_live_flag_uses_it(api):
    api.post("/v1/segments", SEGMENT, format="json")
    rule = {"id": "beta", "when": {"any": [{"segment": "beta-testers"}]}, "serve": {"variant": "on"}}
    assert api.post("/v1/flags", {"key": "f", "rules": [rule]}, format="json").status_code == 201
    response = api.delete("/v1/segments/beta-testers")
    assert response.status_code == 409
    assert response.json()["error"]["details"]["flags"] == ["f"]
    api.delete("/v1/flags/f")
    assert api.delete("/v1/segments/beta-testers").status_code == 204


def test_segment__referring_to_another_segment__422(api):
    response = api.post("/v1/segments", {"key": "s", "when": {"segment": "x"}}, format="json")
    assert response.status_code == 422


def test_segment__bad_condition__422_with_path(api):
    response = api.post(
        "/v1/segments", {"key": "s", "when": {"attr": "age", "op": "between", "value": [5]}}, format="json"
    )
    assert response.status_code == 422
    assert any(path.startswith("when") for path in response.json()["error"]["details"]["fields"])


def test_segment_list__filters_and_pagination(api):
    for key in ("a-1", "a-2", "b-1"):
        api.post("/v1/segments", {"key": key, "description": f"desc {key}"}, format="json")
    body = api.get("/v1/segments?key_prefix=a-&limit=1").json()
    assert body["count"] == 2
    assert [s["key"] for s in body["results"]] == ["a-1"]
    assert [s["key"] for s in api.get("/v1/segments?q=desc%20b").json()["results"]] == ["b-1"]
