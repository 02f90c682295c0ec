"""Purge of archived flags past FLAG_ARCHIVE_RETENTION_DAYS (issue 15, item 6; flags/retention.py):
what goes, what stays (audit entries, the chain, the key), bounded batches, tenants apart, dry runs."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from flagsvc_sdk.engine.errors import ValidationFailed

from audit.models import AuditEntry, ChangeEvent
from audit.verification import verify_chain
from flags.models import ChangeRequest, Flag, FlagVersion, PurgedFlagKey
from flags.retention import flags_purge_archived
from flags.services import flag_archive, flag_restore, flag_update
from tests.factories import make_flag
from usage.models import UsageCount, UsageSpan
from usage.services import Count, hour_of, usage_record
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

_batches = iter(range(1_000_000))


def archived_days_ago(tenant: Any, key: str, days: float) -> Flag:
    """A flag archived `days` ago (with two stored versions and an hour of usage)."""
    make_flag(tenant, key)
    flag_update(tenant=tenant, key=key, data={"state": "on"}, partial=True)
    served(tenant, key)
    flag = flag_archive(tenant=tenant, key=key)
    Flag._base_manager.filter(pk=flag.pk).update(archived_at=timezone.now() - timedelta(days=days))
    return flag


def served(tenant: Any, key: str) -> None:
    hour = hour_of(timezone.now())
    usage_record(
        tenant_id=tenant.pk,
        batch_id=f"b-{next(_batches)}",
        counts=[Count(key, "on", "DEFAULT", hour, 3, hour)],
    )


def keys(tenant: Any) -> list[str]:
    return sorted(Flag.objects.for_tenant(tenant).values_list("key", flat=True))


def test_purge__after_the_retention_not_before(tenant, settings):
    settings.FLAG_ARCHIVE_RETENTION_DAYS = 365
    old = archived_days_ago(tenant, "old", 366)
    archived_days_ago(tenant, "recent", 364)
    make_flag(tenant, "live")
    served(tenant, "live")

    report = flags_purge_archived(tenant=tenant)

    assert [flag.key for flag in report.purged] == ["old"]
    assert report.purged[0].versions == 3 and report.purged[0].usage_rows == 1
    assert keys(tenant) == ["live", "recent"]
    assert not FlagVersion.all_tenants.filter(flag_id=old.pk).exists(), "its versions go with it"
    assert sorted(UsageCount.objects.for_tenant(tenant).values_list("flag_key", flat=True)) == [
        "live",
        "recent",
    ]
    assert not UsageSpan.objects.for_tenant(tenant).filter(flag_key="old").exists()
    assert list(PurgedFlagKey.objects.for_tenant(tenant).values_list("key", flat=True)) == ["old"]
    assert flags_purge_archived(tenant=tenant).purged == [], "a second run finds nothing"


def test_purge__audit_entries_stay_the_chain_verifies_and_the_purge_is_audited(tenant):
    archived_days_ago(tenant, "old", 400)
    before = list(
        AuditEntry.objects.for_tenant(tenant)
        .filter(entity_key="old")
        .order_by("seq")
        .values_list("pk", flat=True)
    )
    events_before = ChangeEvent.objects.for_tenant(tenant).count()

    flags_purge_archived(tenant=tenant)

    entries = AuditEntry.objects.for_tenant(tenant).filter(entity_key="old").order_by("seq")
    assert [e.pk for e in entries][: len(before)] == before, "every earlier entry stays"
    purge = entries.last()
    assert purge is not None
    assert (purge.action, purge.actor, purge.after) == ("purge", "system:retention", None)
    assert purge.before["key"] == "old" and purge.before["archived_at"] is not None
    assert "3 stored versions" in purge.reason and "1 usage rows" in purge.reason
    assert ChangeEvent.objects.for_tenant(tenant).count() == events_before, "no event: nothing served changed"
    report = verify_chain(tenant=tenant)
    assert report.ok and report.checked == AuditEntry.objects.for_tenant(tenant).count()


def test_purge__key_reuse_is_409_then_201_with_reuse_key_and_audited(api, tenant):
    archived_days_ago(tenant, "old", 400)
    flags_purge_archived(tenant=tenant)

    refused = api.post("/v1/flags", {"key": "old"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert refused.json()["error"]["details"]["purged"] is True
    created = api.post("/v1/flags", {"key": "old", "name": "new", "reuse_key": True}, format="json")
    assert created.status_code == 201 and created.json()["version"] == 1

    actions = list(
        AuditEntry.objects.for_tenant(tenant)
        .filter(entity_key="old")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["purge", "reuse_key", "create"]
    reuse = AuditEntry.objects.for_tenant(tenant).get(entity_key="old", action="reuse_key")
    assert reuse.before["purged"] is True and reuse.before["last_version"] == 3
    assert not PurgedFlagKey.objects.for_tenant(tenant).exists()
    assert verify_chain(tenant=tenant).ok


def test_purge__a_flag_whose_key_was_reused__leaves_the_new_flag_and_its_usage(api, tenant):
    make_flag(tenant, "old")
    flag_archive(tenant=tenant, key="old")
    assert api.post("/v1/flags", {"key": "old", "reuse_key": True}, format="json").status_code == 201
    served(tenant, "old")
    renamed = Flag.objects.for_tenant(tenant).get(key__startswith="~")
    Flag._base_manager.filter(pk=renamed.pk).update(archived_at=timezone.now() - timedelta(days=400))

    report = flags_purge_archived(tenant=tenant)

    assert [(f.key, f.stored_key) for f in report.purged] == [("old", renamed.key)]
    assert keys(tenant) == ["old"]
    assert UsageCount.objects.for_tenant(tenant).filter(flag_key="old").exists(), "the live flag's usage"
    assert not PurgedFlagKey.objects.for_tenant(tenant).exists(), "the live flag holds the key"
    purge = AuditEntry.objects.for_tenant(tenant).get(action="purge")
    assert purge.entity_key == "old" and renamed.key in purge.reason


def test_purge__deletes_in_bounded_batches(tenant, settings):
    settings.RETENTION_BATCH_ROWS = 2
    settings.FLAG_PURGE_BATCH = 2
    for i in range(5):
        archived_days_ago(tenant, f"old-{i}", 400)

    with CaptureQueriesContext(connection) as ctx:
        report = flags_purge_archived(tenant=tenant)

    assert len(report.purged) == 5 and keys(tenant) == []
    deletes = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("DELETE")]
    bulk = [sql for sql in deletes if " IN (" in sql]
    assert bulk, "versions are deleted by primary keys"
    for sql in bulk:
        listed = re.search(r" IN \(([^)]*)\)", sql)
        assert listed is not None and len(listed.group(1).split(",")) <= 2, sql
    limits = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith('SELECT "flags_flag"."id" AS "pk", "flags_flag"."archived_at"')
    ]
    assert limits and all(re.search(r"LIMIT 2\b", sql) for sql in limits), "due flags read 2 at a time"


def test_purge__another_tenant_untouched(tenant, other_tenant):
    archived_days_ago(tenant, "old", 400)
    archived_days_ago(other_tenant, "old", 400)

    flags_purge_archived(tenant=tenant)

    assert keys(tenant) == []
    assert keys(other_tenant) == ["old"]
    assert UsageCount.objects.for_tenant(other_tenant).filter(flag_key="old").exists()
    assert not PurgedFlagKey.objects.for_tenant(other_tenant).exists()


def test_purge__held_while_a_change_request_is_open(tenant):
    flag = archived_days_ago(tenant, "old", 400)
    ChangeRequest.objects.for_tenant(tenant).create(
        tenant=tenant,
        flag=flag,
        flag_key="old",
        kind="restore",
        base_version=flag.version,
        base={},
        proposed={},
        author="user:alice",
    )

    report = flags_purge_archived(tenant=tenant)

    assert report.purged == [] and report.held == ["old"]
    assert keys(tenant) == ["old"]


def test_purge_command__dry_run_changes_nothing(tenant):
    archived_days_ago(tenant, "old", 400)
    entries = AuditEntry.objects.for_tenant(tenant).count()
    out = StringIO()

    call_command("purge_archived_flags", "--tenant", tenant.slug, "--dry-run", "--json", stdout=out)

    document = json.loads(out.getvalue())
    [report] = document["tenants"]
    assert report["dry_run"] is True
    assert [(f["key"], f["removed"]["versions"]) for f in report["purged"]] == [("old", 3)]
    assert keys(tenant) == ["old"]
    assert AuditEntry.objects.for_tenant(tenant).count() == entries
    assert not PurgedFlagKey.objects.for_tenant(tenant).exists()


def test_purge_command__purges_and_says_so(tenant, other_tenant):
    archived_days_ago(tenant, "old", 400)
    archived_days_ago(other_tenant, "theirs", 400)
    out = StringIO()

    call_command("purge_archived_flags", "--tenant", tenant.slug, stdout=out)

    assert "old: archived" in out.getvalue() and "Purged 1 archived flags." in out.getvalue()
    assert keys(tenant) == [] and keys(other_tenant) == ["theirs"]


def test_worker__purges_due_flags_with_its_retention_pass(tenant, other_tenant):
    archived_days_ago(tenant, "old", 400)
    archived_days_ago(other_tenant, "theirs", 400)
    archived_days_ago(other_tenant, "recent", 10)

    Worker().prune_if_due()

    assert keys(tenant) == [] and keys(other_tenant) == ["recent"]
    assert (
        AuditEntry.objects.for_tenant(other_tenant).filter(action="purge", actor="system:retention").count()
        == 1
    )


def test_purge__restoring_a_flag_whose_prerequisite_was_purged__is_422(tenant):
    make_flag(tenant, "base", state="on")
    make_flag(tenant, "feature", prerequisites=[{"flag": "base", "variants": ["on"]}])
    flag_archive(tenant=tenant, key="feature")  # a live dependant would keep `base` from being archived
    base = flag_archive(tenant=tenant, key="base")
    Flag._base_manager.filter(pk=base.pk).update(archived_at=timezone.now() - timedelta(days=400))

    assert [flag.key for flag in flags_purge_archived(tenant=tenant).purged] == ["base"]

    with pytest.raises(ValidationFailed) as refused:  # 422 over HTTP, naming the field
        flag_restore(tenant=tenant, key="feature")
    assert any(field.startswith("prerequisites") for field in refused.value.fields)
    assert Flag.objects.for_tenant(tenant).get(key="feature").archived_at is not None
