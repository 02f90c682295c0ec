"""The audit log admin is read-only for everyone and filterable."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from flags.services import flag_update
from tests.admin.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_read_only__no_add_change_or_delete(owner, superuser, acme_flag):
    entry = AuditEntry.objects.for_tenant(acme_flag.tenant).get(entity="flag")
    for person in (owner, superuser):
        client = signed_in(person)
        assert client.get("/admin/audit/auditentry/add/").status_code == 403
        page = client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"actor": "x"}).status_code == 403
        assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.for_tenant(acme_flag.tenant).get(entity="flag").actor == "system:test"


def test_filters__entity_action_actor_and_dates(viewer, acme_flag, acme_segment):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True, actor="user:bob")
    client = signed_in(viewer)
    for query, expected in [
        ({}, 4),  # the flag's create and update, the segment's create, the viewer's membership
        ({"entity": "membership"}, 1),
        ({"entity": "segment"}, 1),
        ({"action": "update"}, 1),
        ({"actor": "user:bob"}, 1),
        ({"q": "checkout"}, 2),
    ]:
        response = client.get("/admin/audit/auditentry/", query)
        assert response.context["cl"].result_count == expected, query
    entry = AuditEntry.objects.for_tenant(acme_flag.tenant).get(actor="user:bob")
    response = client.get(
        "/admin/audit/auditentry/", {"ts__year": entry.ts.year, "ts__month": entry.ts.month}
    )
    assert response.context["cl"].result_count == 4
    assert "date_hierarchy" not in response.context or response.context["cl"].date_hierarchy == "ts"


def test_entry_page__readable_diff(viewer, acme_flag):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True)
    entry = AuditEntry.objects.for_tenant(acme_flag.tenant).get(action="update")
    page = signed_in(viewer).get(f"/admin/audit/auditentry/{entry.pk}/change/").content.decode()
    assert "flagsvc-diff" in page and "&quot;off&quot;" in page and "&quot;on&quot;" in page
