"""The importer (service and `import_flags` command) and the ruleset check: judged as one change."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from flags.config_io import ImportRejected, ruleset_import
from flags.models import Flag
from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def needs(key: str) -> list[dict[str, Any]]:
    return [{"flag": key, "variants": ["on"]}]


def stored(tenant: Tenant) -> tuple[list[tuple[str, int, bool]], int]:
    flags = Flag.objects.for_tenant(tenant).order_by("key")
    return [(f.key, f.version, f.archived_at is not None) for f in flags], AuditEntry.objects.for_tenant(
        tenant
    ).count()


@pytest.fixture
def payments_required(tenant: Tenant) -> Tenant:
    make_flag(tenant, "payments")
    make_flag(tenant, "checkout", prerequisites=needs("payments"))
    return tenant


def test_import_prune__archives_a_flag_a_kept_flag_requires__rejected_nothing_written(payments_required):
    tenant = payments_required
    before = stored(tenant)
    document = {"format_version": 1, "flags": [{"key": "checkout", "prerequisites": needs("payments")}]}

    with pytest.raises(ImportRejected) as rejected:
        ruleset_import(tenant=tenant, document=document, prune=True)

    assert [(p.where, p.field) for p in rejected.value.problems] == [
        ('flags[0] "checkout"', "prerequisites[0].flag")
    ]
    assert "unknown or archived flag 'payments'" in rejected.value.problems[0].message
    assert stored(tenant) == before


def test_import_flags_command__archives_a_required_flag__command_error_nothing_written(
    payments_required, tmp_path: Path
):
    tenant = payments_required
    before = stored(tenant)
    path = tmp_path / "ruleset.json"
    document = {"format_version": 1, "flags": [{"key": "checkout", "prerequisites": needs("payments")}]}
    path.write_text(json.dumps(document))

    with pytest.raises(CommandError) as failure:
        call_command("import_flags", "--tenant", "acme", str(path), "--prune", stdout=StringIO())

    assert "was not applied to acme" in str(failure.value)
    assert "unknown or archived flag 'payments'" in str(failure.value)
    assert stored(tenant) == before


def test_import_prune__archives_a_prerequisite_and_its_dependant__applied_as_one_change(tenant):
    """`base` is archived before `feature` (key order) while `feature` still requires it: the ruleset
    check judges the state the import ends in, not each step of it."""
    make_flag(tenant, "base")
    make_flag(tenant, "feature", prerequisites=needs("base"))

    plan = ruleset_import(tenant=tenant, document={"format_version": 1, "flags": []}, prune=True)

    assert [(c.action, c.key) for c in plan.changes] == [("archive", "base"), ("archive", "feature")]
    assert [(key, archived) for key, _, archived in stored(tenant)[0]] == [("base", True), ("feature", True)]


def test_import__locks_the_tenant_row_once_not_once_per_audit_entry(tenant):
    """On PostgreSQL each lock of the same row taken in a savepoint (an import writes each flag in
    one) makes a new multixact holding every earlier locker: 10,000 flags cost minutes in COMMIT. The
    ruleset change locks the tenant when it begins; the audit chain, inside it, does not lock again."""
    document = {"format_version": 1, "flags": [{"key": f"bulk-{n:03d}"} for n in range(30)]}

    with CaptureQueriesContext(connection) as queries:
        ruleset_import(tenant=tenant, document=document)

    tenant_locks = [
        q["sql"]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and "tenancy_tenant" in q["sql"]
    ]
    assert len(stored(tenant)[0]) == 30
    assert AuditEntry.objects.for_tenant(tenant).count() == 30
    if connection.vendor == "postgresql":  # SQLite has no FOR UPDATE: the whole database is locked
        assert len(tenant_locks) == 1, tenant_locks
