"""Every admin is scoped to the person's tenants: lists, object URLs (404), actions, choices, autocomplete."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEntry
from flags.models import Flag
from tenancy.models import ApiClient, Membership
from tenancy.services import api_client_create
from tests.admin.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tenants(tenant, other_tenant, acme_flag, globex_flag, acme_segment, globex_segment, owner, outsider):
    """acme and globex, each with a flag, a segment, an owner and an API client."""
    api_client_create(tenant=tenant, scopes=["evaluate"], name="acme-svc")
    api_client_create(tenant=other_tenant, scopes=["evaluate"], name="globex-svc")
    return tenant, other_tenant


CHANGELISTS = [
    "/admin/flags/flag/",
    "/admin/segments/segment/",
    "/admin/audit/auditentry/",
    "/admin/tenancy/membership/",
    "/admin/tenancy/apiclient/",
    "/admin/tenancy/tenant/",
]


def _row_tenant_ids(response) -> set[int]:
    rows = response.context["cl"].result_list
    return {getattr(row, "tenant_id", row.pk) for row in rows}


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelist__lists_only_the_member_tenants_rows(two_tenants, outsider, url):
    _, globex = two_tenants
    response = signed_in(outsider).get(url)
    assert response.status_code == 200
    assert _row_tenant_ids(response) == {globex.pk}, "an owner of globex must see globex rows only"


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelist__superuser_sees_every_tenant(two_tenants, superuser, url):
    acme, globex = two_tenants
    response = signed_in(superuser).get(url)
    assert response.status_code == 200
    assert _row_tenant_ids(response) == {acme.pk, globex.pk}


def _acme_objects(tenant, acme_flag, acme_segment, owner):
    membership = Membership.all_tenants.get(user=owner, tenant=tenant)
    client = ApiClient.all_tenants.filter(tenant=tenant).first()
    entry = AuditEntry.objects.for_tenant(tenant).first()
    return {
        "flags/flag": acme_flag.pk,
        "segments/segment": acme_segment.pk,
        "audit/auditentry": entry.pk,
        "tenancy/membership": membership.pk,
        "tenancy/apiclient": client.pk,
        "tenancy/tenant": tenant.pk,
    }


@pytest.mark.parametrize("suffix", ["change/", "history/", "delete/"])
def test_object_urls_of_another_tenant__404(two_tenants, outsider, acme_flag, acme_segment, owner, suffix):
    acme, _ = two_tenants
    client = signed_in(outsider)
    for model, pk in _acme_objects(acme, acme_flag, acme_segment, owner).items():
        response = client.get(f"/admin/{model}/{pk}/{suffix}")
        assert response.status_code == 404, f"{model} {suffix}: {response.status_code}"
        response = client.post(f"/admin/{model}/{pk}/{suffix}", {"post": "yes"})
        assert response.status_code == 404, f"POST {model} {suffix}: {response.status_code}"


def test_flag_views_of_another_tenant__404(two_tenants, outsider, acme_flag):
    client = signed_in(outsider)
    assert client.post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"}).status_code == 404
    assert (
        client.post(f"/admin/flags/flag/{acme_flag.pk}/preview/", {"_preview_user_id": "u"}).status_code
        == 404
    )
    assert client.get(f"/admin/flags/flag/{acme_flag.pk}/", follow=True).status_code == 404


def test_unknown_object_url__404_not_a_redirect(editor):
    response = signed_in(editor).get("/admin/flags/flag/999999/change/")
    assert response.status_code == 404


def test_search__finds_nothing_in_another_tenant(two_tenants, outsider):
    response = signed_in(outsider).get("/admin/flags/flag/", {"q": "checkout"})
    assert list(response.context["cl"].result_list) == []
    response = signed_in(outsider).get("/admin/audit/auditentry/", {"q": "checkout"})
    assert list(response.context["cl"].result_list) == []


def test_filter_by_another_tenants_id__shows_none_of_its_rows(two_tenants, outsider):
    acme, _ = two_tenants
    response = signed_in(outsider).get("/admin/flags/flag/", {"tenant": str(acme.pk)})
    assert acme.pk not in _row_tenant_ids(response)


def test_action_on_another_tenants_flag__leaves_it_untouched(two_tenants, outsider, acme_flag):
    response = signed_in(outsider).post(
        "/admin/flags/flag/", {"action": "turn_on", "_selected_action": [str(acme_flag.pk)]}
    )
    assert response.status_code in (200, 302)
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.state, flag.version) == ("off", 1)


def test_action_on_a_read_only_tenant__skips_it(make_person, tenant, other_tenant, acme_flag, globex_flag):
    person = make_person("mixed", {tenant: "editor", other_tenant: "viewer"})
    signed_in(person).post(
        "/admin/flags/flag/",
        {"action": "turn_on", "_selected_action": [str(acme_flag.pk), str(globex_flag.pk)]},
    )
    assert Flag.objects.for_tenant(tenant).get(pk=acme_flag.pk).state == "on"
    assert Flag.objects.for_tenant(other_tenant).get(pk=globex_flag.pk).state == "off"


def test_tenant_choices__only_tenants_the_person_may_write(make_person, tenant, other_tenant):
    person = make_person("mixed", {tenant: "editor", other_tenant: "viewer"})
    client = signed_in(person)
    for url in ("/admin/flags/flag/add/", "/admin/segments/segment/add/"):
        form = client.get(url).context["adminform"].form
        assert list(form.fields["tenant"].queryset) == [tenant]


def test_tenant_choice__posting_a_read_only_tenant__refused(make_person, tenant, other_tenant):
    person = make_person("mixed", {tenant: "editor", other_tenant: "viewer"})
    response = signed_in(person).post(
        "/admin/flags/flag/add/",
        {"tenant": str(other_tenant.pk), "key": "sneaky", "type": "boolean", "state": "off",
         "variants": '[{"key": "on", "value": true}, {"key": "off", "value": false}]'},
    )  # fmt: skip
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    assert not Flag.objects.for_tenant(other_tenant).filter(key="sneaky").exists()


def _autocomplete(client, model: str, term: str = "") -> list[str]:
    app_label, model_name = model.split("/")
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": app_label, "model_name": model_name, "field_name": "tenant", "term": term},
    )
    assert response.status_code == 200, response.status_code
    return [row["text"] for row in json.loads(response.content)["results"]]


def test_tenant_autocomplete__offers_only_writable_member_tenants(make_person, tenant, other_tenant):
    person = make_person("mixed", {tenant: "editor", other_tenant: "viewer"})
    client = signed_in(person)
    assert _autocomplete(client, "flags/flag") == ["acme"]
    assert _autocomplete(client, "segments/segment", "glo") == []
    assert _autocomplete(client, "tenancy/membership") == [], "memberships need the owner role"


def test_tenant_autocomplete__superuser_gets_all(superuser, tenant, other_tenant):
    assert _autocomplete(signed_in(superuser), "flags/flag") == ["acme", "globex"]


def test_tenant_filter__offers_only_member_tenants(make_person, tenant, other_tenant):
    from tests.factories import TenantFactory

    TenantFactory(slug="initech")
    person = make_person("mixed", {tenant: "editor", other_tenant: "viewer"})
    response = signed_in(person).get("/admin/flags/flag/")
    tenant_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "tenant")
    assert [label for _, label in tenant_filter.lookup_choices] == ["acme", "globex"]


def test_staff_without_membership__sees_no_models(make_person, acme_flag):
    person = make_person("nobody")
    client = signed_in(person)
    assert client.get("/admin/").context["app_list"] == []
    assert client.get("/admin/flags/flag/").status_code == 403
    assert client.get(f"/admin/flags/flag/{acme_flag.pk}/change/").status_code == 404


def test_not_staff__cannot_sign_in(db, tenant):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="civilian", password="pw-long-enough-1")
    Membership.all_tenants.create(user=user, tenant=tenant, role="owner")
    response = signed_in(user).get("/admin/flags/flag/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
