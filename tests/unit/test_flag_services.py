"""Write services: validation, versions, audit in the same transaction, whatever the path."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from flagsvc_sdk.engine import ValidationFailed

from audit.models import AuditEntry
from flags.models import Flag, FlagVersion
from flags.services import flag_archive, flag_create, flag_restore, flag_rollback, flag_update
from kernel.context import acting_as
from kernel.errors import Conflict, Invalid, PreconditionFailed
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def entries(tenant):
    return list(AuditEntry.objects.for_tenant(tenant).order_by("seq"))


def test_flag_create__same_key_same_body__returns_existing_without_audit(tenant):
    first, created = flag_create(tenant=tenant, actor="user:pm", data={"key": "f", "state": "on"})
    again, created_again = flag_create(tenant=tenant, actor="user:pm", data={"key": "f", "state": "on"})
    assert created and not created_again
    assert again.pk == first.pk
    assert len(entries(tenant)) == 1


def test_flag_create__different_body__conflict(tenant):
    make_flag(tenant, "f")
    with pytest.raises(Conflict):
        flag_create(tenant=tenant, data={"key": "f", "name": "other"})


def test_flag_create__invalid__raises_engine_validation_and_stores_nothing(tenant):
    with pytest.raises(ValidationFailed) as caught:
        flag_create(tenant=tenant, data={"key": "f", "state": "sideways"})
    assert "state" in caught.value.fields
    assert Flag.objects.for_tenant(tenant).count() == 0
    assert entries(tenant) == []


def test_every_change__one_version_row_and_one_audit_entry(tenant):
    make_flag(tenant, "f")
    flag_update(tenant=tenant, key="f", data={"state": "on"}, partial=True, actor="user:pm")
    flag_archive(tenant=tenant, key="f")
    flag_restore(tenant=tenant, key="f")
    flag_rollback(tenant=tenant, key="f", version=1)
    flag = Flag.objects.for_tenant(tenant).get(key="f")
    assert flag.version == 5
    assert list(
        FlagVersion.objects.for_tenant(tenant).order_by("version").values_list("version", flat=True)
    ) == [1, 2, 3, 4, 5]
    assert [e.action for e in entries(tenant)] == ["create", "update", "archive", "restore", "rollback"]
    assert entries(tenant)[1].actor == "user:pm"
    assert flag.state == "off"  # rolled back to version 1's content


def test_update__with_no_change__writes_no_version(tenant):
    make_flag(tenant, "f", state="on")
    flag = flag_update(tenant=tenant, key="f", data={"state": "on"}, partial=True)
    assert flag.version == 1
    assert len(entries(tenant)) == 1


def test_update__stale_version__precondition_failed(tenant):
    make_flag(tenant, "f")
    with pytest.raises(PreconditionFailed):
        flag_update(tenant=tenant, key="f", data={"state": "on"}, partial=True, expected_version=7)


def test_update__immutable_type__invalid(tenant):
    make_flag(tenant, "f")
    with pytest.raises(Invalid) as caught:
        flag_update(tenant=tenant, key="f", data={"type": "string"}, partial=True)
    assert "type" in caught.value.details["fields"]


def test_failure_halfway__leaves_no_partial_state(tenant):
    """A real database failure after the flag row is written rolls back the row and its audit entry."""
    flag = make_flag(tenant, "f")
    FlagVersion.all_tenants.create(tenant=tenant, flag=flag, version=2, document={}, actor="blocker")
    with pytest.raises(IntegrityError):
        flag_update(tenant=tenant, key="f", data={"state": "on"}, partial=True)
    flag.refresh_from_db()
    assert flag.version == 1 and flag.state == "off"
    assert len(entries(tenant)) == 1


def test_shell_path__a_direct_save_is_audited_as_shell(tenant):
    flag = make_flag(tenant, "f")
    flag.name = "edited in a shell"
    flag.save()
    last = entries(tenant)[-1]
    assert last.actor == "system:shell"
    assert last.action == "update"
    assert last.diff == {"name": {"from": "", "to": "edited in a shell"}}
    assert FlagVersion.objects.for_tenant(tenant).filter(version=2).exists()


def test_command_path__seed_is_audited_as_the_command(db):
    call_command("seed", "--json")
    from tenancy.models import Tenant

    acme = Tenant.objects.get(slug="acme")
    actors = {e.actor for e in entries(acme)}
    assert actors == {"system:seed"}
    assert Flag.objects.for_tenant(acme).count() >= 3


def test_acting_as__sets_the_actor_for_any_write(tenant):
    with acting_as("user:alice", request_id="rid-9"):
        make_flag(tenant, "f")
    entry = entries(tenant)[0]
    assert entry.request_id == "rid-9"


def test_update__json_value_from_1_to_true__is_a_change(tenant):
    make_flag(tenant, "j", type="json", variants=[{"key": "a", "value": [1], "weight": 1}], off_variant="a")
    flag = flag_update(
        tenant=tenant, key="j", data={"variants": [{"key": "a", "value": [True], "weight": 1}]}, partial=True
    )
    assert flag.version == 2
    assert flag.variants[0]["value"] == [True]
