"""Roles per tenant: viewer reads, editor changes flags and segments, owner also members and API clients."""

from __future__ import annotations

import pytest

from flags.models import Flag
from segments.models import Segment
from tests.admin.conftest import signed_in
from tests.admin.test_flag_admin import form_data

pytestmark = pytest.mark.django_db


def test_viewer__change_page_is_read_only(viewer, acme_flag):
    page = signed_in(viewer).get(f"/admin/flags/flag/{acme_flag.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
    assert "View flag" in page
    assert "flagsvc-preview" in page, "viewers may still preview the saved flag"


def test_viewer__every_write_is_refused(viewer, tenant, acme_flag, acme_segment):
    client = signed_in(viewer)
    assert (
        client.post(f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag, state="on")).status_code
        == 403
    )
    assert client.get("/admin/flags/flag/add/").status_code == 403
    assert client.post("/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data()}).status_code == 403
    assert client.post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"}).status_code == 403
    assert (
        client.post(f"/admin/segments/segment/{acme_segment.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert client.post(f"/admin/segments/segment/{acme_segment.pk}/change/", {"name": "x"}).status_code == 403
    assert Flag.objects.for_tenant(tenant).get(pk=acme_flag.pk).version == 1
    assert Segment.objects.for_tenant(tenant).filter(pk=acme_segment.pk).exists()


def test_viewer__no_actions_and_no_add_button(viewer, acme_flag):
    response = signed_in(viewer).get("/admin/flags/flag/")
    assert response.context["action_form"] is None
    assert "/admin/flags/flag/add/" not in response.content.decode()


def test_viewer__action_post_is_refused(viewer, acme_flag):
    signed_in(viewer).post("/admin/flags/flag/", {"action": "turn_on", "_selected_action": [acme_flag.pk]})
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).state == "off"


def test_viewer__history_without_rollback_buttons(viewer, acme_flag):
    response = signed_in(viewer).get(f"/admin/flags/flag/{acme_flag.pk}/history/")
    assert response.status_code == 200
    assert "Roll back" not in response.content.decode()


@pytest.mark.parametrize("url", ["/admin/tenancy/membership/", "/admin/tenancy/apiclient/"])
def test_editor__members_and_api_clients_are_for_owners(editor, url):
    assert signed_in(editor).get(url).status_code == 403


@pytest.mark.parametrize(
    "url", ["/admin/tenancy/membership/", "/admin/tenancy/apiclient/", "/admin/flags/flag/"]
)
def test_owner__manages_members_api_clients_and_flags(owner, url):
    assert signed_in(owner).get(url).status_code == 200


def test_index__shows_what_the_role_allows(viewer, editor, owner):
    def models(user) -> set[str]:
        apps = signed_in(user).get("/admin/").context["app_list"]
        return {m["object_name"] for app in apps for m in app["models"]}

    assert models(viewer) == {"Flag", "ChangeRequest", "Playground", "Segment", "AuditEntry", "Tenant"}
    assert models(editor) == {"Flag", "ChangeRequest", "Playground", "Segment", "AuditEntry", "Tenant"}
    assert models(owner) == {
        *{
            "Flag",
            "ChangeRequest",
            "Playground",
            "Segment",
            "AuditEntry",
            "Tenant",
            "Membership",
            "ApiClient",
        },
        *{"Webhook", "WebhookDelivery"},
        "KillSwitch",  # the kill switch page: owners only
    }


def test_members__need_no_django_model_permissions(editor):
    assert not editor.user_permissions.exists()
    assert signed_in(editor).get("/admin/flags/flag/add/").status_code == 200
