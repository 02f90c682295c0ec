"""The tamper-evident audit chain and `manage.py verify_audit` (audit/chain.py, audit/verification.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.chain import entry_content, entry_hash
from audit.models import AuditEntry
from flags.services import flag_archive, flag_update
from tenancy.models import Tenant
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(tenant: Tenant, other_tenant: Tenant) -> Tenant:
    """Four audit entries for acme (seq 1-4), one for globex."""
    make_flag(tenant, "a")
    flag_update(tenant=tenant, key="a", data={"state": "on"}, actor="user:alice", partial=True)
    make_segment(tenant, "beta", included=["u-1"])
    flag_archive(tenant=tenant, key="a", actor="user:alice")
    make_flag(other_tenant, "b")
    assert AuditEntry.objects.for_tenant(tenant).count() == 4
    return tenant


def tamper(sql: str, params: list[object]) -> None:
    """Change audit rows behind the app's back, as someone with database access could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The append-only trigger refuses this; an attacker with owner rights can switch it off.
            # DDL is transactional in PostgreSQL: the test's rollback switches it back on. (ALTER TABLE
            # waits for no deferred foreign-key check of this transaction, so run those first.)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        cursor.execute(sql, params)


def verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def test_verify_audit__intact_chain__passes_and_prints_the_head(chain):
    head = AuditEntry.objects.for_tenant(chain).order_by("-seq").first()
    output = verify("--tenant", "acme")
    assert "OK: 4 audit entries of acme, chain intact" in output
    assert f"head seq 4 hash {head.entry_hash}" in output


def test_verify_audit__all_tenants__checks_each_chain(chain):
    output = verify("--all-tenants")
    assert "OK: 4 audit entries of acme" in output
    assert "OK: 1 audit entries of globex" in output


def test_verify_audit__row_edited_behind_the_apps_back__fails_naming_the_first_broken_seq(chain):
    tamper(
        "UPDATE audit_auditentry SET actor = %s WHERE tenant_id = %s AND seq = %s",
        ["user:mallory", chain.pk, 2],
    )

    with pytest.raises(CommandError) as failure:
        verify("--tenant", "acme")

    message = str(failure.value)
    assert "BROKEN at seq 2" in message
    assert "content does not match its hash (edited)" in message
    assert "1 entries before it verified" in message
    assert failure.value.returncode == 1, "manage.py exits non-zero"


def test_verify_audit__row_edited_and_its_hash_recomputed__caught_at_the_next_seq(chain):
    entry = AuditEntry.objects.for_tenant(chain).get(seq=2)
    entry.actor = "user:mallory"
    forged = entry_hash(entry.prev_hash, entry_content(entry))
    tamper(
        "UPDATE audit_auditentry SET actor = %s, entry_hash = %s WHERE tenant_id = %s AND seq = %s",
        ["user:mallory", forged, chain.pk, 2],
    )

    with pytest.raises(CommandError, match=r"BROKEN at seq 3 .*prev_hash does not match"):
        verify("--tenant", "acme")


def test_verify_audit__middle_row_deleted__fails_naming_the_gap(chain):
    entry = AuditEntry.objects.for_tenant(chain).get(seq=2)
    tamper("DELETE FROM audit_changeevent WHERE audit_entry_id = %s", [entry.pk])
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])

    with pytest.raises(CommandError, match=r"BROKEN at seq 3 .*expected seq 2: an entry is missing"):
        verify("--tenant", "acme")


def test_verify_audit__other_tenants_chain_is_not_affected(chain, other_tenant):
    tamper("UPDATE audit_auditentry SET actor = %s WHERE tenant_id = %s AND seq = %s", ["x", chain.pk, 1])
    assert "OK: 1 audit entries of globex" in verify("--tenant", "globex")
    with pytest.raises(CommandError, match="acme: BROKEN at seq 1"):
        verify("--all-tenants")


def test_verify_audit__unknown_tenant__fails(db):
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        verify("--tenant", "nope")


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)
def test_audit_entries__postgresql_refuses_update_and_delete(chain):
    for sql in (
        "UPDATE audit_auditentry SET actor = 'x' WHERE tenant_id = %s",
        "DELETE FROM audit_auditentry WHERE tenant_id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [chain.pk])
    assert "OK: 4 audit entries of acme" in verify("--tenant", "acme")
