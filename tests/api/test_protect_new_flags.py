"""A tenant that protects every new flag (`Tenant.protect_new_flags`): flags created by the API, the
importer or the admin are born protected, so their first change already needs four eyes."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.models import AuditEntry
from flags.models import ChangeRequest, Flag
from flags.services import flag_create
from tenancy.models import Tenant
from tenancy.services import tenant_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def guarded(tenant: Tenant) -> Tenant:
    return tenant_update(tenant=tenant, protect_new_flags=True)


def test_create__policy_on__flag_born_protected__first_change_is_a_change_request(
    api: APIClient, guarded: Tenant
) -> None:
    created = api.post("/v1/flags", {"key": "checkout", "state": "off"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["protected"] is True
    change = api.patch("/v1/flags/checkout", {"state": "on"}, format="json")
    assert change.status_code == 202, change.content
    assert change.json()["status"] == "pending"
    assert Flag.objects.for_tenant(guarded).get(key="checkout").state == "off"


def test_create__policy_on__protected_true_accepted(api: APIClient, guarded: Tenant) -> None:
    created = api.post("/v1/flags", {"key": "checkout", "protected": True}, format="json")
    assert created.status_code == 201
    assert created.json()["protected"] is True


def test_create__policy_on__protected_false__422_at_protected__nothing_created(
    api: APIClient, guarded: Tenant
) -> None:
    response = api.post("/v1/flags", {"key": "checkout", "protected": False}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    [message] = error["details"]["fields"]["protected"]
    assert "protects every new flag" in message
    assert not Flag.all_tenants.filter(key="checkout").exists()


def test_create__policy_off__unprotected_as_before(api: APIClient, tenant: Tenant) -> None:
    assert api.post("/v1/flags", {"key": "plain"}, format="json").json()["protected"] is False


def test_create__policy_read_under_the_lock__a_stale_tenant_object_does_not_escape_it(tenant: Tenant) -> None:
    """Another process may hold a cached tenant from before the owner turned the policy on."""
    stale = Tenant.objects.get(pk=tenant.pk)
    tenant_update(tenant=tenant, protect_new_flags=True)
    assert stale.protect_new_flags is False
    flag, created = flag_create(tenant=stale, data={"key": "late"})
    assert created and flag.protected is True


def test_create__same_body_again_after_the_policy_came__same_flag_no_conflict(
    api: APIClient, tenant: Tenant
) -> None:
    """A retried create stays idempotent: the policy shapes new flags only."""
    first = api.post("/v1/flags", {"key": "early"}, format="json")
    assert first.status_code == 201 and first.json()["protected"] is False
    tenant_update(tenant=tenant, protect_new_flags=True)
    again = api.post("/v1/flags", {"key": "early"}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["protected"] is False


def test_import__policy_on__new_flags_protected__existing_flags_keep_theirs(
    tenant: Tenant, tmp_path: Path
) -> None:
    flag_create(tenant=tenant, data={"key": "old", "state": "off"})
    tenant_update(tenant=tenant, protect_new_flags=True)
    document = {
        "format_version": 1,
        "segments": [],
        "flags": [{"key": "old", "state": "on"}, {"key": "fresh", "state": "on"}],
    }
    path = tmp_path / "ruleset.json"
    path.write_text(json.dumps(document))
    call_command("import_flags", "--tenant", tenant.slug, str(path), stdout=StringIO())
    flags = {flag.key: flag for flag in Flag.objects.for_tenant(tenant)}
    assert (flags["fresh"].protected, flags["fresh"].state) == (True, "on")
    assert (flags["old"].protected, flags["old"].state) == (False, "on"), "written directly, as before"
    assert not ChangeRequest.objects.for_tenant(tenant).exists()


def test_policy_change__audited_on_the_tenant(tenant: Tenant) -> None:
    tenant_update(tenant=tenant, protect_new_flags=True)
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="tenant").latest("seq")
    assert entry.diff["protect_new_flags"] == {"from": False, "to": True}
