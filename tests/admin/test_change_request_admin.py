"""Four eyes in the admin: the change form, every list action and the rollback of a protected flag open a
change request; the review page lets another person approve, and anyone allowed apply or reject."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser

from audit.models import AuditEntry
from flags.approvals import applying
from flags.models import ChangeRequest, Flag
from flags.services import flag_archive, flag_update
from tenancy.models import Tenant
from tests.admin.conftest import PersonFactory, signed_in
from tests.admin.test_flag_admin import form_data
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def guarded(tenant: Tenant) -> Flag:
    return make_flag(tenant, "guarded", state="off", protected=True)


@pytest.fixture
def bob(make_person: PersonFactory, tenant: Tenant) -> AbstractBaseUser:
    return make_person("bob", {tenant: "editor"})


def _stored(tenant: Tenant, key: str = "guarded") -> Flag:
    return Flag.objects.for_tenant(tenant).get(key=key)


def _requests(tenant: Tenant) -> list[ChangeRequest]:
    return list(ChangeRequest.objects.for_tenant(tenant).order_by("id"))


def test_the_change_form_of_a_protected_flag_says_so(editor: AbstractBaseUser, guarded: Flag) -> None:
    page = signed_in(editor).get(f"/admin/flags/flag/{guarded.pk}/change/").content.decode()
    assert "Protected: changes need approval" in page


def test_saving_a_protected_flag_opens_a_change_request(
    editor: AbstractBaseUser, guarded: Flag, tenant: Tenant
) -> None:
    data = form_data(guarded, state="on", protected="on")
    response = signed_in(editor).post(f"/admin/flags/flag/{guarded.pk}/change/", data, follow=True)
    [cr] = _requests(tenant)
    assert response.redirect_chain[-1][0] == f"/admin/flags/changerequest/{cr.pk}/change/"
    page = response.content.decode()
    assert f"Change request #{cr.pk}</a> opened" in page
    assert "needs another person&#x27;s approval" in page or "needs another person's approval" in page
    assert (cr.author, cr.status, cr.proposed["state"]) == ("user:alice", "pending", "on")
    assert _stored(tenant).state == "off" and _stored(tenant).version == 1


def test_unticking_protected_is_itself_a_change_request(
    editor: AbstractBaseUser, guarded: Flag, tenant: Tenant
) -> None:
    signed_in(editor).post(f"/admin/flags/flag/{guarded.pk}/change/", form_data(guarded))
    [cr] = _requests(tenant)
    assert cr.proposed["protected"] is False
    assert _stored(tenant).protected is True


def test_ticking_protected_on_an_unprotected_flag_is_direct(
    editor: AbstractBaseUser, acme_flag: Flag, tenant: Tenant
) -> None:
    signed_in(editor).post(f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag, protected="on"))
    assert _stored(tenant, "checkout").protected is True
    assert _requests(tenant) == []


@pytest.mark.parametrize(("action", "kind"), [("turn_on", "update"), ("archive", "archive")])
def test_list_actions_on_a_protected_flag_open_change_requests(
    editor: AbstractBaseUser, guarded: Flag, tenant: Tenant, action: str, kind: str
) -> None:
    response = signed_in(editor).post(
        "/admin/flags/flag/", {"action": action, "_selected_action": [guarded.pk]}, follow=True
    )
    [cr] = _requests(tenant)
    assert cr.kind == kind
    assert f"Change request #{cr.pk}</a> opened" in response.content.decode()
    flag = _stored(tenant)
    assert (flag.state, flag.archived_at, flag.version) == ("off", None, 1)


def test_turn_off_and_restore_actions_open_change_requests(editor: AbstractBaseUser, tenant: Tenant) -> None:
    on = make_flag(tenant, "on-flag", state="on", protected=True)
    gone = make_flag(tenant, "gone-flag", protected=True)
    with applying(gone):
        flag_archive(tenant=tenant, key="gone-flag")
    client = signed_in(editor)
    client.post("/admin/flags/flag/", {"action": "turn_off", "_selected_action": [on.pk]})
    client.post("/admin/flags/flag/?archived=yes", {"action": "restore", "_selected_action": [gone.pk]})
    kinds = sorted((cr.flag_key, cr.kind) for cr in _requests(tenant))
    assert kinds == [("gone-flag", "restore"), ("on-flag", "update")]
    assert _stored(tenant, "on-flag").state == "on"
    assert _stored(tenant, "gone-flag").archived_at is not None


def test_rollback_in_the_history_opens_a_change_request(
    editor: AbstractBaseUser, guarded: Flag, tenant: Tenant
) -> None:
    with applying(guarded):
        flag_update(tenant=tenant, key="guarded", data={"state": "on"}, partial=True)
    signed_in(editor).post(f"/admin/flags/flag/{guarded.pk}/rollback/", {"version": "1"})
    [cr] = _requests(tenant)
    assert (cr.kind, cr.rollback_version) == ("rollback", 1)
    assert _stored(tenant).version == 2 and _stored(tenant).state == "on"


def _open_as(person: AbstractBaseUser, flag: Flag) -> ChangeRequest:
    signed_in(person).post(
        f"/admin/flags/flag/{flag.pk}/change/", form_data(flag, state="on", protected="on")
    )
    return ChangeRequest.objects.for_tenant(flag.tenant_id).latest("id")


def test_the_author_cannot_approve_in_the_admin(editor: AbstractBaseUser, guarded: Flag) -> None:
    cr = _open_as(editor, guarded)
    client = signed_in(editor)
    page = client.get(f"/admin/flags/changerequest/{cr.pk}/change/").content.decode()
    assert 'value="approve"' not in page
    assert "another person must approve it" in page
    response = client.post(
        f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "approve"}, follow=True
    )
    assert "cannot approve it" in response.content.decode()
    cr.refresh_from_db()
    assert cr.status == "pending"


def test_another_editor_approves_and_applies(
    editor: AbstractBaseUser, bob: AbstractBaseUser, guarded: Flag, tenant: Tenant
) -> None:
    cr = _open_as(editor, guarded)
    client = signed_in(bob)
    page = client.get(f"/admin/flags/changerequest/{cr.pk}/change/").content.decode()
    assert 'value="approve"' in page and '<strong class="flagsvc-change-subject">State</strong>' in page
    client.post(f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "approve"})
    cr.refresh_from_db()
    assert cr.status == "approved" and cr.approvals[0]["actor"] == "user:bob"
    response = client.post(f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "apply"}, follow=True)
    assert "is now version 2" in response.content.decode()
    assert _stored(tenant).state == "on"
    entry = AuditEntry.objects.for_tenant(tenant).get(entity="flag", action="update")
    assert entry.actor == "user:bob"


def test_a_viewer_sees_the_review_but_cannot_decide(
    editor: AbstractBaseUser, make_person: PersonFactory, guarded: Flag, tenant: Tenant
) -> None:
    cr = _open_as(editor, guarded)
    viewer = make_person("vera", {tenant: "viewer"})
    client = signed_in(viewer)
    page = client.get(f"/admin/flags/changerequest/{cr.pk}/change/").content.decode()
    assert "decision" not in page
    response = client.post(f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "approve"})
    assert response.status_code == 403
    cr.refresh_from_db()
    assert cr.status == "pending"


def test_another_tenants_request_is_404_in_the_admin(
    editor: AbstractBaseUser, make_person: PersonFactory, other_tenant: Tenant, guarded: Flag
) -> None:
    cr = _open_as(editor, guarded)
    outsider = make_person("olga", {other_tenant: "owner"})
    client = signed_in(outsider)
    assert client.get(f"/admin/flags/changerequest/{cr.pk}/change/").status_code == 404
    assert (
        client.post(f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "reject"}).status_code == 404
    )
    assert f"#{cr.pk}" not in client.get("/admin/flags/changerequest/").content.decode()


def test_the_list_shows_status_and_approvers(
    editor: AbstractBaseUser, bob: AbstractBaseUser, guarded: Flag, settings: Any
) -> None:
    cr = _open_as(editor, guarded)
    signed_in(bob).post(f"/admin/flags/changerequest/{cr.pk}/decide/", {"decision": "approve"})
    page = signed_in(editor).get("/admin/flags/changerequest/").content.decode()
    assert "flagsvc-cr-approved" in page and "user:bob" in page and "Change state" in page


def test_the_change_form_links_the_open_requests_and_logs_no_admin_change(
    editor: AbstractBaseUser, guarded: Flag
) -> None:
    from django.contrib.admin.models import LogEntry

    cr = _open_as(editor, guarded)
    page = signed_in(editor).get(f"/admin/flags/flag/{guarded.pk}/change/").content.decode()
    assert f'/admin/flags/changerequest/{cr.pk}/change/">#{cr.pk}</a> by user:alice (pending)' in page
    assert not LogEntry.objects.filter(object_id=str(guarded.pk)).exists()
