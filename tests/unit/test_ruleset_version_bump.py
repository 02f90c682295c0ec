"""One ruleset version per ruleset transaction (`tenancy.ruleset.next_ruleset_version`): the events of an
import share it; a bump a rolled-back savepoint undid is made again, never reused."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import ChangeEvent
from flags.config_io import ruleset_import
from tenancy.models import Tenant
from tenancy.ruleset import next_ruleset_version, ruleset_change

pytestmark = pytest.mark.django_db


def _version(tenant: Tenant) -> int:
    return int(Tenant.objects.get(pk=tenant.pk).ruleset_version)


def test_an_import_is_one_ruleset_version__every_event_names_it(tenant):
    before = _version(tenant)
    flags = [
        {"key": f"f{n}", "type": "boolean", "state": "on", "default": {"variant": "on"}} for n in range(5)
    ]
    ruleset_import(tenant=tenant, document={"format_version": 1, "segments": [], "flags": flags})

    after = _version(tenant)
    assert after == before + 1
    events = ChangeEvent.objects.for_tenant(tenant).filter(ruleset_version__gt=before)
    assert sorted(events.values_list("entity_key", flat=True)) == [f"f{n}" for n in range(5)]
    assert set(events.values_list("ruleset_version", flat=True)) == {after}


def test_two_transactions_are_two_versions(tenant):
    before = _version(tenant)
    for _ in range(2):
        with ruleset_change(tenant):
            first = next_ruleset_version(tenant.pk)
            assert next_ruleset_version(tenant.pk) == first, "the same transaction: the same version"
    assert _version(tenant) == before + 2


def _bump_in_a_savepoint_that_fails(tenant: Tenant) -> None:
    with transaction.atomic():
        next_ruleset_version(tenant.pk)
        raise RuntimeError("a write inside a savepoint fails")


def test_a_bump_undone_by_a_rolled_back_savepoint__is_made_again(tenant):
    before = _version(tenant)
    with ruleset_change(tenant):
        with pytest.raises(RuntimeError):
            _bump_in_a_savepoint_that_fails(tenant)
        assert _version(tenant) == before, "the savepoint took the bump with it"
        again = next_ruleset_version(tenant.pk)
        assert _version(tenant) == again == before + 1, "bumped again, not a number the row does not hold"
