"""The admin's kill switch page, the flag form's kill category, and change reasons in the admin."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from flags.killswitch import killswitch_engage
from flags.models import Flag, KillSwitch
from segments.models import Segment
from tenancy.services import tenant_update
from tests.admin.conftest import signed_in
from tests.admin.test_flag_admin import _errors, form_data
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

BOARD = "/admin/flags/killswitch/"


def engage_url(tenant, category: str = "payments") -> str:
    return f"{BOARD}{tenant.pk}/{category}/engage/"


def release_url(tenant, category: str = "payments") -> str:
    return f"{BOARD}{tenant.pk}/{category}/release/"


@pytest.fixture
def payments(tenant) -> list[Flag]:
    return [
        make_flag(tenant, "pay-a", state="on", kill_category="payments"),
        make_flag(tenant, "pay-b", state="off", kill_category="payments"),
        make_flag(tenant, "search", state="on", kill_category="search"),
    ]


def states(tenant) -> dict[str, str]:
    return dict(Flag.objects.for_tenant(tenant).values_list("key", "state"))


def test_board__owner_sees_the_categories_and_their_flags(owner, payments):
    page = signed_in(owner).get(BOARD)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-category="payments"' in html and 'data-category="search"' in html
    assert "pay-a" in html and "Engage kill switch" in html


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_board__is_for_owners_only(request, who, payments, tenant):
    client = signed_in(request.getfixturevalue(who))
    assert client.get(BOARD).status_code == 403
    assert client.post(engage_url(tenant), {"reason": "x"}).status_code in (403, 404)
    assert states(tenant)["pay-a"] == "on"


def test_engage__another_tenants_owner_gets_404_and_changes_nothing(outsider, payments, tenant):
    client = signed_in(outsider)
    assert client.get(engage_url(tenant)).status_code == 404
    assert client.post(engage_url(tenant), {"reason": "x"}).status_code == 404
    assert 'data-category="payments"' not in client.get(BOARD).content.decode()
    assert states(tenant)["pay-a"] == "on"


def test_engage__confirmation_page_names_the_flags_that_will_turn_off(owner, payments, tenant):
    page = signed_in(owner).get(engage_url(tenant))
    html = page.content.decode()
    assert page.status_code == 200
    turning_off = html.split('id="flagsvc-ks-turning-off"')[1].split("</ul>")[0]
    assert "pay-a" in turning_off and "pay-b" not in turning_off and "search" not in turning_off
    assert "Reason (required)" in html


def test_engage__without_a_reason__error_at_the_reason_and_nothing_changes(owner, payments, tenant):
    page = signed_in(owner).post(engage_url(tenant), {"reason": "  "})
    assert page.status_code == 200
    assert page.context["form"].errors["reason"]
    assert states(tenant)["pay-a"] == "on"
    assert not KillSwitch.objects.for_tenant(tenant).exists()


def test_engage__with_a_reason__turns_them_off_audited_as_the_person(owner, payments, tenant):
    response = signed_in(owner).post(engage_url(tenant), {"reason": "INC-9 payments down"})
    assert response.status_code == 302
    assert states(tenant) == {"pay-a": "off", "pay-b": "off", "search": "on"}
    entry = AuditEntry.objects.for_tenant(tenant).filter(action="kill").get()
    assert (entry.entity_key, entry.actor, entry.reason) == ("pay-a", "user:olivia", "INC-9 payments down")
    board = signed_in(owner).get(BOARD).content.decode()
    assert "flagsvc-ks-engaged" in board and "INC-9 payments down" in board


def test_release__puts_them_back(owner, payments, tenant):
    killswitch_engage(tenant=tenant, category="payments", actor="user:olivia", reason="INC-9")
    client = signed_in(owner)
    assert "pay-a" in client.get(release_url(tenant)).content.decode()
    assert client.post(release_url(tenant), {"reason": "fixed"}).status_code == 302
    assert states(tenant)["pay-a"] == "on"
    assert client.get(release_url(tenant)).status_code == 404, "not engaged any more"


def test_flag_form__shows_killed_by_switch_and_edits_the_category(owner, payments, tenant):
    killswitch_engage(tenant=tenant, category="payments", actor="user:olivia", reason="INC-9")
    flag = Flag.objects.for_tenant(tenant).get(key="pay-a")
    page = signed_in(owner).get(f"/admin/flags/flag/{flag.pk}/change/").content.decode()
    assert "Killed by switch payments" in page
    assert 'name="kill_category"' in page and 'value="payments"' in page

    response = signed_in(owner).post(
        f"/admin/flags/flag/{flag.pk}/change/", form_data(flag, kill_category="checkout")
    )
    assert response.status_code == 302
    assert Flag.objects.for_tenant(tenant).get(key="pay-a").kill_category == "checkout"


def test_flag_form__bad_category__error_at_the_field(editor, acme_flag):
    response = signed_in(editor).post(
        f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag, kill_category="Not A Slug")
    )
    assert response.status_code == 200 and "kill_category" in _errors(response)


def test_flag_form__reason_goes_on_the_audit_entry_and_the_history(editor, acme_flag):
    client = signed_in(editor)
    response = client.post(
        f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag, state="on", reason="launch day")
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.for_tenant(acme_flag.tenant).filter(entity_key="checkout").latest("seq")
    assert (entry.reason, entry.actor) == ("launch day", "user:alice")
    assert "launch day" in client.get(f"/admin/flags/flag/{acme_flag.pk}/history/").content.decode()


def test_flag_form__tenant_requires_a_reason__error_at_the_reason_field(editor, acme_flag, tenant):
    tenant_update(tenant=tenant, require_change_reason=True)
    response = signed_in(editor).post(
        f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag, state="on")
    )
    assert response.status_code == 200
    assert list(_errors(response)) == ["reason"]
    assert Flag.objects.for_tenant(tenant).get(key="checkout").state == "off"


def test_segment_form__reason_required_by_the_tenant_and_stored(editor, acme_segment, tenant):
    tenant_update(tenant=tenant, require_change_reason=True)
    url = f"/admin/segments/segment/{acme_segment.pk}/change/"
    data = {"name": "Beta", "description": "", "included": "u-1\nu-2", "excluded": "", "when": "",
            "expected_version": acme_segment.version}  # fmt: skip
    refused = signed_in(editor).post(url, data)
    assert refused.status_code == 200 and "reason" in _errors(refused)
    assert signed_in(editor).post(url, {**data, "reason": "add u-2"}).status_code == 302
    assert Segment.objects.for_tenant(tenant).get(key="beta").included == ["u-1", "u-2"]
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="segment").latest("seq")
    assert entry.reason == "add u-2"


def test_list_action__carries_the_reason_of_the_action_bar(editor, acme_flag, tenant):
    signed_in(editor).post(
        "/admin/flags/flag/", {"action": "turn_on", "_selected_action": [acme_flag.pk], "reason": "go live"}
    )
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity_key="checkout").latest("seq")
    assert (entry.action, entry.reason) == ("update", "go live")


def test_list_action__tenant_requires_a_reason__nothing_changes_without_one(editor, acme_flag, tenant):
    tenant_update(tenant=tenant, require_change_reason=True)
    response = signed_in(editor).post(
        "/admin/flags/flag/", {"action": "turn_on", "_selected_action": [acme_flag.pk]}, follow=True
    )
    assert "reason" in response.content.decode()
    assert Flag.objects.for_tenant(tenant).get(key="checkout").state == "off"
