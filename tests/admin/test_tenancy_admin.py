"""Tenants (superusers), memberships and API clients (owners) in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEntry
from audit.verification import verify_chain
from tenancy.models import ApiClient, Membership, Tenant, hash_client_secret
from tests.admin.conftest import PASSWORD, signed_in
from tests.factories import TenantFactory

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


TAKEN = ["This username is taken. Choose another username."]


def _add_member(client, tenant, username: str, role: str = "editor", email: str = ""):
    return client.post(
        "/admin/tenancy/membership/add/",
        {"username": username, "email": email, "tenant": tenant.pk, "role": role},
    )


def test_membership__owner_adds_a_member_of_their_other_tenant(make_person, owner, tenant):
    initech = TenantFactory(slug="initech")
    Membership.all_tenants.create(user=owner, tenant=initech, role="owner")
    colleague = make_person("colleague", {initech: "viewer"})
    response = _add_member(signed_in(owner), tenant, "colleague")
    assert response.status_code == 302
    assert Membership.all_tenants.get(user=colleague, tenant=tenant).role == "editor"


def test_membership__owner_names_a_person_outside_their_tenants__taken_and_nothing_attached(
    owner, outsider, superuser, tenant, make_person
):
    loner = make_person("loner")  # staff, in no tenant at all
    client = signed_in(owner)
    for username in ("gus", "root", "loner", "GUS"):
        response = _add_member(client, tenant, username)
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"username": TAKEN}, username
        page = response.content.decode()
        assert "globex" not in page and "No person" not in page
    assert not Membership.all_tenants.filter(tenant=tenant, user__in=[outsider, superuser, loner]).exists()
    assert Membership.all_tenants.filter(user=outsider).count() == 1


def test_membership__owner_creates_a_new_person__member_of_that_tenant__link_shown_once(owner, tenant):
    client = signed_in(owner)
    response = _add_member(client, tenant, "newcomer", role="viewer", email="new@example.com")
    assert response.status_code == 200, "rendered in place: a redirect would park the link in a cookie"
    assert "no-store" in response["Cache-Control"]
    person = get_user_model().objects.get(username="newcomer")
    assert (person.email, person.is_staff, person.is_superuser) == ("new@example.com", True, False)
    assert not person.has_usable_password()
    assert list(Membership.all_tenants.filter(user=person).values_list("tenant__slug", "role")) == [
        ("acme", "viewer")
    ]
    link = response.context["link"]
    assert link.startswith("http://testserver/admin/set-password/") and link in response.content.decode()
    assert link not in client.get("/admin/tenancy/membership/").content.decode()

    newcomer = Client()
    form_url = newcomer.get(link, follow=True).redirect_chain[-1][0]
    done = newcomer.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD}, follow=True)
    assert "Your password is set" in done.content.decode()
    assert newcomer.login(username="newcomer", password=PASSWORD)
    again = Client().get(link, follow=True).content.decode()
    assert "has expired or has already been used" in again


def test_membership__owner_cannot_add_to_a_tenant_they_do_not_own(owner, tenant, other_tenant):
    response = _add_member(signed_in(owner), other_tenant, "newcomer")
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["tenant"]
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_membership__known_member_with_another_email__refused(make_person, owner, tenant):
    initech = TenantFactory(slug="initech")
    Membership.all_tenants.create(user=owner, tenant=initech, role="owner")
    make_person("colleague", {initech: "viewer"})
    response = _add_member(signed_in(owner), tenant, "colleague", email="other@example.com")
    assert "email" in response.context["adminform"].form.errors
    assert not Membership.all_tenants.filter(tenant=tenant, user__username="colleague").exists()


def test_membership__already_a_member__error(owner, editor, tenant):
    response = _add_member(signed_in(owner), tenant, "alice")
    assert response.context["adminform"].form.errors == {"username": ["alice is already a member of acme."]}


def test_membership__invalid_username__error_at_username(owner, tenant):
    response = _add_member(signed_in(owner), tenant, "no spaces allowed")
    assert list(response.context["adminform"].form.errors) == ["username"]
    assert not get_user_model().objects.filter(username="no spaces allowed").exists()


def test_membership__superuser_attaches_anyone(superuser, outsider, tenant):
    response = _add_member(signed_in(superuser), tenant, "gus", role="viewer")
    assert response.status_code == 302
    assert Membership.all_tenants.get(user=outsider, tenant=tenant).role == "viewer"


def test_membership__owner_changes_a_role_and_removes_a_member(owner, editor, tenant):
    membership = Membership.all_tenants.get(user=editor, tenant=tenant)
    client = signed_in(owner)
    response = client.post(f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "owner"})
    assert response.status_code == 302
    assert Membership.all_tenants.get(pk=membership.pk).role == "owner"
    client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.all_tenants.filter(pk=membership.pk).exists()


def test_people__owner_cannot_list_or_open_people(owner, outsider):
    client = signed_in(owner)
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get(f"/admin/auth/user/{outsider.pk}/change/").status_code in (403, 302)


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
    client.post(f"/admin/tenancy/tenant/{tenant.pk}/change/", {"name": "x", "is_active": ""})
    tenant.refresh_from_db()
    assert (tenant.name, tenant.is_active) != ("x", False), "an owner changes only the change policy"
    assert client.get(f"/admin/tenancy/tenant/{other_tenant.pk}/change/").status_code in (302, 404)


def test_tenant__an_owner_sets_the_change_reason_policy_of_their_tenant(owner, tenant, editor):
    from audit.models import AuditEntry

    assert (
        signed_in(editor)
        .post(f"/admin/tenancy/tenant/{tenant.pk}/change/", {"require_change_reason": "on"})
        .status_code
        == 403
    )
    response = signed_in(owner).post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/", {"require_change_reason": "on"}
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.require_change_reason is True
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="tenant").latest("seq")
    assert entry.actor == "user:olivia" and entry.diff["require_change_reason"]["to"] is True


def test_user_page__superuser_sees_memberships_inline(superuser, owner):
    page = signed_in(superuser).get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    assert "memberships-" in page


def _audit(tenant, entity: str) -> list[tuple[str, str, str, dict | None, dict | None]]:
    entries = AuditEntry.objects.for_tenant(tenant).filter(entity=entity).exclude(actor="system:shell")
    entries = entries.order_by("seq")
    return [(e.actor, e.action, e.entity_key, e.before, e.after) for e in entries]


def test_membership__add_change_remove__each_audited_with_the_owner_as_actor(owner, tenant):
    client = signed_in(owner)
    _add_member(client, tenant, "newcomer", role="viewer")
    membership = Membership.all_tenants.get(user__username="newcomer")
    client.post(f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "editor"})
    client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    viewer, editor = {"person": "newcomer", "role": "viewer"}, {"person": "newcomer", "role": "editor"}
    assert _audit(tenant, "membership") == [
        ("user:olivia", "create", "newcomer", None, viewer),
        ("user:olivia", "update", "newcomer", viewer, editor),
        ("user:olivia", "delete", "newcomer", editor, None),
    ]
    assert verify_chain(tenant=tenant).ok


def test_tenant__name_and_state_edits__audited(superuser, tenant):
    signed_in(superuser).post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/", {"name": "Acme Corp", "is_active": ""}
    )
    [(actor, action, key, before, after)] = _audit(tenant, "tenant")
    assert (actor, action, key) == ("user:root", "update", "acme")
    assert (before["name"], before["is_active"], after["name"], after["is_active"]) == (
        tenant.name,
        True,
        "Acme Corp",
        False,
    )
    assert verify_chain(tenant=tenant).ok


def _new_link(client, membership):
    return client.post(
        "/admin/tenancy/membership/", {"action": "new_password_link", "_selected_action": [membership.pk]}
    )


def test_new_password_link__person_who_never_signed_in__new_link_old_one_dead(owner, tenant):
    client = signed_in(owner)
    old_link = _add_member(client, tenant, "newcomer", role="viewer").context["link"]
    membership = Membership.all_tenants.get(user__username="newcomer")
    response = _new_link(client, membership)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new_link = response.context["link"]
    assert new_link != old_link
    assert "has expired or has already been used" in Client().get(old_link, follow=True).content.decode()
    assert "Welcome, <strong>newcomer</strong>" in Client().get(new_link, follow=True).content.decode()


def test_new_password_link__person_who_signed_in_or_has_another_tenant__refused(
    owner, editor, tenant, other_tenant, make_person
):
    client = signed_in(owner)
    signed_in(editor)  # force_login sets last_login
    shared = make_person("shared", {tenant: "viewer", other_tenant: "viewer"})
    for person in (editor, shared):
        password = get_user_model().objects.get(pk=person.pk).password
        response = _new_link(client, Membership.all_tenants.get(user=person, tenant=tenant))
        assert response.status_code == 302
        assert get_user_model().objects.get(pk=person.pk).password == password


def test_tenant__an_owner_turns_on_protect_new_flags__audited(owner, tenant):
    response = signed_in(owner).post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/", {"protect_new_flags": "on"}
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.protect_new_flags, tenant.require_change_reason) == (True, False)
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="tenant").latest("seq")
    assert entry.actor == "user:olivia" and entry.diff["protect_new_flags"]["to"] is True
