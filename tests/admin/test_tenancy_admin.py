"""Tenants (superusers), memberships and API clients (owners) in the admin."""

from __future__ import annotations

import pytest

from tenancy.models import ApiClient, Membership, Tenant, hash_client_secret
from tests.admin.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_api_client__created_by_the_service__secret_shown_once_and_stored_nowhere(owner, tenant):
    client = signed_in(owner)
    response = client.post(
        "/admin/tenancy/apiclient/add/",
        {"tenant": tenant.pk, "name": "checkout", "scopes": ["evaluate", "flags:read"]},
    )
    assert response.status_code == 200, "rendered in place: a redirect would park the secret in a cookie"
    assert "no-store" in response["Cache-Control"]
    [message] = [str(m) for m in response.context["messages"]]
    secret = message.split("Secret of ")[1].split(": ")[1].split(" ")[0]
    stored = ApiClient.all_tenants.get(tenant=tenant, name="checkout")
    assert stored.secret_hash == hash_client_secret(secret)
    assert stored.scopes == ["flags:read", "evaluate"]
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert secret not in client.get("/admin/tenancy/apiclient/").content.decode()
    assert secret not in client.get(f"/admin/tenancy/apiclient/{stored.pk}/change/").content.decode()


def test_api_client__no_scope__error_at_scopes(owner, tenant):
    response = signed_in(owner).post("/admin/tenancy/apiclient/add/", {"tenant": tenant.pk, "name": "x"})
    assert "scopes" in response.context["adminform"].form.errors
    assert not ApiClient.all_tenants.filter(tenant=tenant).exists()


def test_api_client__read_only_after_creation__revoke_action(owner, tenant):
    from tenancy.services import api_client_create

    issued = api_client_create(tenant=tenant, scopes=["evaluate"])
    client = signed_in(owner)
    page = client.get(f"/admin/tenancy/apiclient/{issued.client.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "secret_hash" not in page
    client.post("/admin/tenancy/apiclient/", {"action": "revoke", "_selected_action": [issued.client.pk]})
    assert not ApiClient.all_tenants.get(pk=issued.client.pk).is_active


def test_membership__owner_adds_a_person_by_username(owner, tenant, make_person):
    newcomer = make_person("newcomer")
    response = signed_in(owner).post(
        "/admin/tenancy/membership/add/", {"username": "newcomer", "tenant": tenant.pk, "role": "editor"}
    )
    assert response.status_code == 302
    assert Membership.all_tenants.get(user=newcomer, tenant=tenant).role == "editor"


def test_membership__unknown_username__error(owner, tenant):
    response = signed_in(owner).post(
        "/admin/tenancy/membership/add/", {"username": "ghost", "tenant": tenant.pk, "role": "viewer"}
    )
    assert response.context["adminform"].form.errors["username"] == ["No person has this username."]


def test_membership__the_last_owner_cannot_be_demoted_or_removed(owner, tenant):
    membership = Membership.all_tenants.get(user=owner, tenant=tenant)
    client = signed_in(owner)
    response = client.post(f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "viewer"})
    assert "last owner" in str(response.context["adminform"].form.errors)
    client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    assert Membership.all_tenants.get(pk=membership.pk).role == "owner"


def test_tenant__superuser_creates_through_the_service(superuser):
    response = signed_in(superuser).post(
        "/admin/tenancy/tenant/add/", {"slug": "initech", "name": "Initech", "is_active": "on"}
    )
    assert response.status_code == 302
    assert Tenant.objects.get(slug="initech").name == "Initech"


def test_tenant__invalid_slug__error_at_slug(superuser):
    response = signed_in(superuser).post(
        "/admin/tenancy/tenant/add/", {"slug": "Not Valid", "is_active": "on"}
    )
    assert "slug" in response.context["adminform"].form.errors


def test_tenant__superuser_deactivates(superuser, tenant):
    response = signed_in(superuser).post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/", {"name": "Acme", "is_active": ""}
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.is_active, tenant.name) == (False, "Acme")


def test_tenant__members_only_read_their_own(owner, tenant, other_tenant):
    client = signed_in(owner)
    response = client.get("/admin/tenancy/tenant/")
    assert [t.slug for t in response.context["cl"].result_list] == ["acme"]
    assert "owner" in response.content.decode()
    assert client.get("/admin/tenancy/tenant/add/").status_code == 403
    assert client.post(f"/admin/tenancy/tenant/{tenant.pk}/change/", {"name": "x"}).status_code == 403


def test_user_page__superuser_sees_memberships_inline(superuser, owner):
    page = signed_in(superuser).get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    assert "memberships-" in page
