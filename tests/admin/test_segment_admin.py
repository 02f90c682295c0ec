"""The segments admin writes through segments.services and refuses to delete a segment in use."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEntry
from segments.models import Segment
from tests.admin.conftest import signed_in
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

USES_BETA = [{"id": "beta", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]


def test_add__through_the_service__audited(editor, tenant):
    response = signed_in(editor).post(
        "/admin/segments/segment/add/",
        {"tenant": tenant.pk, "key": "pro", "included": "u-1\n\nu-2\n", "excluded": "u-9",
         "when": json.dumps({"attr": "plan", "op": "in", "value": ["pro"]})},
    )  # fmt: skip
    assert response.status_code == 302
    segment = Segment.objects.for_tenant(tenant).get(key="pro")
    assert (segment.included, segment.excluded, segment.version) == (["u-1", "u-2"], ["u-9"], 1)
    entry = AuditEntry.objects.for_tenant(tenant).get(entity="segment", entity_key="pro")
    assert (entry.action, entry.actor) == ("create", "user:alice")


def test_change__engine_error_at_the_condition_field(editor, acme_segment):
    response = signed_in(editor).post(
        f"/admin/segments/segment/{acme_segment.pk}/change/",
        {
            "included": "u-1",
            "when": json.dumps({"attr": "plan", "op": "sorta", "value": 1}),
            "expected_version": 1,
        },
    )
    errors = response.context["adminform"].form.errors
    assert errors["when"][0].startswith("when.op: ")


def test_change__new_version(editor, acme_segment):
    response = signed_in(editor).post(
        f"/admin/segments/segment/{acme_segment.pk}/change/",
        {"included": "u-1\nu-3", "when": "", "expected_version": 1},
    )
    assert response.status_code == 302
    segment = Segment.objects.for_tenant(acme_segment.tenant).get(pk=acme_segment.pk)
    assert (segment.included, segment.version) == (["u-1", "u-3"], 2)


def test_changelist__counts_the_live_flags_using_each_segment(editor, tenant, acme_segment):
    make_flag(tenant, "a", rules=USES_BETA)
    make_flag(tenant, "b", rules=USES_BETA)
    response = signed_in(editor).get("/admin/segments/segment/")
    [row] = response.context["cl"].result_list
    assert response.context["cl"].model_admin.used_by(row) == 2


def test_delete__in_use__explains_and_deletes_nothing(editor, tenant, acme_segment):
    make_flag(tenant, "a", rules=USES_BETA)
    client = signed_in(editor)
    page = client.get(f"/admin/segments/segment/{acme_segment.pk}/delete/").content.decode()
    assert "is used by 1 live flag" in page and "nothing was deleted" in page
    assert 'name="post"' not in page, "no confirm button"
    response = client.post(f"/admin/segments/segment/{acme_segment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200
    assert Segment.objects.for_tenant(tenant).filter(pk=acme_segment.pk).exists()


def test_delete__unused__through_the_service__audited(editor, tenant, acme_segment):
    assert (
        'name="post"'
        in signed_in(editor).get(f"/admin/segments/segment/{acme_segment.pk}/delete/").content.decode()
    )
    response = signed_in(editor).post(f"/admin/segments/segment/{acme_segment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Segment.objects.for_tenant(tenant).filter(pk=acme_segment.pk).exists()
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity_key="beta").order_by("-seq").first()
    assert (entry.action, entry.actor) == ("delete", "user:alice")


def test_delete__refused_by_the_service_in_a_race__message_and_nothing_deleted(
    editor, tenant, acme_segment, monkeypatch
):
    """The guard on the page passed, but a flag started to use the segment before the POST landed."""
    from segments import admin as segments_admin

    monkeypatch.setattr(
        segments_admin.SegmentAdmin, "get_deleted_objects", lambda self, objs, request: ([], {}, set(), [])
    )
    make_flag(tenant, "a", rules=USES_BETA)
    response = signed_in(editor).post(
        f"/admin/segments/segment/{acme_segment.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert "Nothing was deleted" in response.content.decode()
    assert Segment.objects.for_tenant(tenant).filter(pk=acme_segment.pk).exists()


def test_change_page__links_each_live_flag_using_the_segment(editor, tenant, acme_segment):
    """segments asks `segments.usage` (flags registers there), so it never imports flags."""
    flag = make_flag(tenant, "a", rules=USES_BETA)
    page = signed_in(editor).get(f"/admin/segments/segment/{acme_segment.pk}/change/").content.decode()
    assert f'<a href="/admin/flags/flag/{flag.pk}/change/">a</a>' in page
