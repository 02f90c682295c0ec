"""Tenant B can neither see, change nor learn of tenant A's data: 404, never 403 or 200."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from flags.models import Flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_data(api):
    api.post("/v1/segments", {"key": "seg-a", "included": ["u-1"]}, format="json")
    api.post(
        "/v1/flags",
        {
            "key": "flag-a",
            "state": "on",
            "rules": [{"id": "r", "when": {"segment": "seg-a"}, "serve": {"variant": "on"}}],
        },
        format="json",
    )
    api.patch("/v1/flags/flag-a", {"name": "v2"}, format="json")
    api.post("/v1/flags", {"key": "archived-a"}, format="json")
    api.delete("/v1/flags/archived-a")


USER = {"id": "u-1", "attributes": {}}

ROUTES = [
    ("get", "/v1/flags/flag-a", None),
    ("put", "/v1/flags/flag-a", {"name": "stolen"}),
    ("patch", "/v1/flags/flag-a", {"name": "stolen"}),
    ("delete", "/v1/flags/flag-a", None),
    ("get", "/v1/flags/archived-a?include_archived=true", None),
    ("post", "/v1/flags/archived-a/restore", None),
    ("get", "/v1/flags/flag-a/versions", None),
    ("post", "/v1/flags/flag-a/rollback", {"version": 1}),
    ("get", "/v1/segments/seg-a", None),
    ("put", "/v1/segments/seg-a", {"included": []}),
    ("patch", "/v1/segments/seg-a", {"included": []}),
    ("delete", "/v1/segments/seg-a", None),
    ("post", "/v1/evaluate", {"flag_key": "flag-a", "user": USER}),
    ("post", "/v1/evaluate/preview", {"flag_key": "flag-a", "user": USER}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_other_tenant__entity_routes__404(a_data, other_api, tenant, method, path, body):
    response = getattr(other_api, method)(path, body, format="json")
    assert response.status_code == 404, (method, path, response.content)
    assert response.json()["error"]["code"] in ("not_found", "flag_not_found")
    flag = Flag.objects.for_tenant(tenant).get(key="flag-a")
    assert flag.name == "v2" and flag.archived_at is None


def test_other_tenant__lists_bulk_and_audit_show_nothing_of_a(a_data, other_api):
    assert other_api.get("/v1/flags?include_archived=true").json()["count"] == 0
    assert other_api.get("/v1/segments").json()["count"] == 0
    assert other_api.get("/v1/audit").json()["count"] == 0
    assert other_api.get("/v1/audit?entity_key=flag-a").json()["count"] == 0
    bulk = other_api.post("/v1/evaluate/bulk", {"user": USER, "flag_keys": ["flag-a"]}, format="json").json()
    assert bulk["flags"]["flag-a"]["error_code"] == "FLAG_NOT_FOUND"
    assert other_api.post("/v1/evaluate/bulk", {"user": USER}, format="json").json()["flags"] == {}


def test_other_tenant__can_use_the_same_keys_independently(a_data, other_api, tenant, other_tenant):
    assert other_api.post("/v1/flags", {"key": "flag-a"}, format="json").status_code == 201
    assert other_api.post("/v1/segments", {"key": "seg-a"}, format="json").status_code == 201
    assert Flag.objects.for_tenant(tenant).get(key="flag-a").version == 2
    assert Flag.objects.for_tenant(other_tenant).get(key="flag-a").version == 1


def test_other_tenant__cannot_refer_to_a_segment_or_prerequisite_of_a(a_data, other_api):
    rule = {"id": "r", "when": {"segment": "seg-a"}, "serve": {"variant": "on"}}
    assert other_api.post("/v1/flags", {"key": "x", "rules": [rule]}, format="json").status_code == 422
    prereq = [{"flag": "flag-a", "variants": ["on"]}]
    assert (
        other_api.post("/v1/flags", {"key": "y", "prerequisites": prereq}, format="json").status_code == 422
    )


def test_other_tenant__token_of_a_with_header_of_b__403_not_data(a_data, make_api, tenant, other_tenant):
    client = make_api(tenant, tenant_header=other_tenant.slug)
    assert client.get("/v1/flags").status_code == 403
    assert AuditEntry.objects.for_tenant(other_tenant).count() == 0
