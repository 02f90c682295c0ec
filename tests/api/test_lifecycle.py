"""Lifecycle and staleness (issue 15, items 2 and 6; api.md, Usage and lifecycle): `lifecycle` and
`remove_after` on the flag document, each flag's `usage` object, `?stale=true`, and `reuse_key`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from flags.models import Flag
from flags.staleness import staleness_of
from tests.factories import make_flag
from usage.services import Count, hour_of, usage_record

pytestmark = pytest.mark.django_db

TWO = {
    "state": "on",
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "off_variant": "off",
    "default": {"variant": "on"},
}
_batches = iter(range(1_000_000))


def served(tenant: Any, key: str, variant: str, *, hours_ago: int, n: int = 1) -> None:
    hour = hour_of(timezone.now()) - timedelta(hours=hours_ago)
    usage_record(
        tenant_id=tenant.pk,
        batch_id=f"b-{next(_batches)}",
        counts=[Count(key, variant, "DEFAULT", hour, n, hour + timedelta(minutes=30))],
    )


def created_days_ago(tenant: Any, key: str, days: int) -> None:
    Flag._base_manager.filter(tenant=tenant, key=key).update(created_at=timezone.now() - timedelta(days=days))


# -- the fields ------------------------------------------------------------------------------------


def test_lifecycle_fields__default_temporary_and_null_and_round_trip(api):
    created = api.post("/v1/flags", {"key": "a"}, format="json")
    assert created.status_code == 201
    assert (created.json()["lifecycle"], created.json()["remove_after"]) == ("temporary", None)

    patched = api.patch(
        "/v1/flags/a", {"lifecycle": "permanent", "remove_after": "2027-03-01"}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["lifecycle"], patched.json()["remove_after"]) == ("permanent", "2027-03-01")
    got = api.get("/v1/flags/a").json()
    assert (got["lifecycle"], got["remove_after"]) == ("permanent", "2027-03-01")
    versions = api.get("/v1/flags/a/versions").json()["results"]
    assert versions[0]["flag"]["lifecycle"] == "permanent"
    entry = AuditEntry.all_tenants.filter(entity_key="a").order_by("-seq").first()
    assert entry is not None and entry.after["remove_after"] == "2027-03-01"
    assert entry.before["remove_after"] is None


def test_lifecycle_fields__put_without_them_resets_to_defaults(api):
    api.post("/v1/flags", {"key": "a", "lifecycle": "permanent", "remove_after": "2027-03-01"}, format="json")
    version = api.get("/v1/flags/a").json()["version"]
    body = api.put("/v1/flags/a", {"key": "a", "version": version}, format="json").json()
    assert (body["lifecycle"], body["remove_after"]) == ("temporary", None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lifecycle", "forever"),
        ("lifecycle", 3),
        ("remove_after", "next week"),
        ("remove_after", "2027-02-30"),
        ("remove_after", "2027-02-01T00:00:00Z"),
        ("remove_after", 20270201),
    ],
)
def test_lifecycle_fields__invalid_is_422_naming_the_field(api, field, value):
    response = api.post("/v1/flags", {"key": "a", field: value}, format="json")
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]["fields"]


def test_lifecycle_fields__not_in_the_engine_snapshot(api, tenant):
    make_flag(tenant, "a", lifecycle="permanent", remove_after="2027-01-01")
    snapshot = api.get("/v1/snapshot").json()
    text = str(snapshot)
    assert "remove_after" not in text and "permanent" not in text


# -- the usage object -------------------------------------------------------------------------------


def test_usage__on_detail_list_and_write_answers(api, tenant):
    make_flag(tenant, "a", **TWO)
    served(tenant, "a", "on", hours_ago=0, n=3)
    served(tenant, "a", "off", hours_ago=48, n=2)
    served(tenant, "a", "off", hours_ago=24 * 20, n=5)

    usage = api.get("/v1/flags/a").json()["usage"]
    assert usage["counts"] == {
        "24h": {"on": 3},
        "7d": {"on": 3, "off": 2},
        "30d": {"on": 3, "off": 7},
    }
    assert usage["last_evaluated_at"] is not None and usage["stale"] is None
    assert api.get("/v1/flags").json()["results"][0]["usage"] == usage
    patched = api.patch("/v1/flags/a", {"name": "A"}, format="json").json()
    assert patched["usage"] == usage
    created = api.post("/v1/flags", {"key": "b"}, format="json").json()
    assert created["usage"] == {
        "last_evaluated_at": None,
        "counts": {"24h": {}, "7d": {}, "30d": {}},
        "stale": None,
    }


def test_usage__a_page_costs_the_same_queries_for_5_or_40_flags(api, tenant, settings):
    # The credentials are read again past API_CLIENT_CHECK_INTERVAL: on a loaded machine seeding 40
    # flags takes longer than 10 s, and the count would then include that re-check.
    settings.API_CLIENT_CHECK_INTERVAL = 3600

    def queries_for(count: int) -> int:
        for i in range(count):
            make_flag(tenant, f"f{count}-{i:03}", **TWO)
            served(tenant, f"f{count}-{i:03}", "on", hours_ago=i)
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(f"/v1/flags?key_prefix=f{count}-&limit=100").status_code == 200
        return len(ctx.captured_queries)

    queries_for(1)  # warm: the first request reads the credentials
    assert queries_for(5) == queries_for(40)


def test_usage__tenant_isolation(api, other_api, tenant, other_tenant):
    make_flag(tenant, "a", **TWO)
    make_flag(other_tenant, "a", **TWO)
    served(other_tenant, "a", "on", hours_ago=0, n=9)
    assert api.get("/v1/flags/a").json()["usage"]["counts"]["24h"] == {}
    assert other_api.get("/v1/flags/a").json()["usage"]["counts"]["24h"] == {"on": 9}


# -- staleness, one reason at a time --------------------------------------------------------------


def stale_of(api: Any, key: str) -> dict[str, Any] | None:
    return api.get(f"/v1/flags/{key}").json()["usage"]["stale"]


def test_stale__never_evaluated_n_days_after_creation(api, tenant):
    make_flag(tenant, "young")
    make_flag(tenant, "old")
    created_days_ago(tenant, "young", 29)
    created_days_ago(tenant, "old", 31)
    assert stale_of(api, "young") is None
    stale = stale_of(api, "old")
    assert stale is not None and stale["reason"] == "never_evaluated"
    assert stale["since"] == api.get("/v1/flags/old").json()["created_at"]


def test_stale__not_evaluated_recently(api, tenant):
    make_flag(tenant, "a", **TWO)
    make_flag(tenant, "b", **TWO)
    created_days_ago(tenant, "a", 60)
    created_days_ago(tenant, "b", 60)
    served(tenant, "a", "on", hours_ago=24 * 31)
    served(tenant, "b", "on", hours_ago=24 * 29)
    served(tenant, "b", "off", hours_ago=24 * 29)
    stale = stale_of(api, "a")
    assert stale is not None and stale["reason"] == "not_evaluated_recently"
    assert stale["since"] == api.get("/v1/flags/a").json()["usage"]["last_evaluated_at"]
    assert stale_of(api, "b") is None


def test_stale__single_variant_for_n_days_from_the_hourly_buckets(api, tenant):
    make_flag(tenant, "mixed", **TWO)
    make_flag(tenant, "settled", **TWO)
    for key in ("mixed", "settled"):
        created_days_ago(tenant, key, 60)
        served(tenant, key, "on", hours_ago=0)
        served(tenant, key, "on", hours_ago=24 * 40)
    served(tenant, "mixed", "off", hours_ago=24 * 10)  # another variant 10 days ago: not yet 30 days
    served(tenant, "settled", "off", hours_ago=24 * 35)
    assert stale_of(api, "mixed") is None
    stale = stale_of(api, "settled")
    assert stale is not None and stale["reason"] == "single_variant"
    expected = hour_of(timezone.now()) - timedelta(hours=24 * 35) + timedelta(hours=1)
    assert stale["since"] == expected.isoformat().replace("+00:00", "Z")


def test_stale__past_remove_after_even_when_permanent(api, tenant):
    yesterday = (timezone.now() - timedelta(days=1)).date()
    make_flag(tenant, "a", remove_after=yesterday.isoformat(), lifecycle="permanent")
    make_flag(tenant, "b", remove_after=timezone.now().date().isoformat())
    assert stale_of(api, "a") == {
        "reason": "past_remove_after",
        "since": f"{timezone.now().date()}T00:00:00Z",
    }
    assert stale_of(api, "b") is None


def test_stale__permanent_flags_are_not_stale_for_usage_evidence(api, tenant):
    make_flag(tenant, "kill", lifecycle="permanent", **TWO)
    make_flag(tenant, "unused", lifecycle="permanent")
    for key in ("kill", "unused"):
        created_days_ago(tenant, key, 90)
    served(tenant, "kill", "off", hours_ago=0)
    served(tenant, "kill", "off", hours_ago=24 * 60)
    assert stale_of(api, "kill") is None
    assert stale_of(api, "unused") is None


def test_staleness_of__with_an_injected_now():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    created = datetime(2026, 10, 1, tzinfo=UTC)
    common: dict[str, Any] = {"lifecycle": "temporary", "remove_after": None, "created_at": created}
    assert staleness_of(**common, last_evaluated_at=None, spans={}, now=now).reason == "never_evaluated"  # type: ignore[union-attr]
    assert staleness_of(**common, last_evaluated_at=None, spans={}, now=created + timedelta(days=29)) is None
    spans = {"on": {"first_hour": created, "last_hour": now.replace(hour=11)}}
    single = staleness_of(**common, last_evaluated_at=now, spans=spans, now=now)  # type: ignore[arg-type]
    assert single is not None and (single.reason, single.since, single.variant) == (
        "single_variant",
        created,
        "on",
    )
    late = {**common, "remove_after": date(2026, 11, 30)}
    assert staleness_of(**late, last_evaluated_at=now, spans={}, now=now).since == datetime(
        2026, 12, 1, tzinfo=UTC
    )  # type: ignore[union-attr]


# -- ?stale=true ----------------------------------------------------------------------------------


def test_stale_list__only_stale_live_flags_paginated_and_isolated(api, other_api, tenant, other_tenant):
    for i in range(5):
        make_flag(tenant, f"old-{i}")
        created_days_ago(tenant, f"old-{i}", 40)
    make_flag(tenant, "fresh")
    make_flag(tenant, "gone")
    created_days_ago(tenant, "gone", 40)
    api.delete("/v1/flags/gone")
    make_flag(other_tenant, "theirs")
    created_days_ago(other_tenant, "theirs", 40)

    first = api.get("/v1/flags?stale=true&limit=2").json()
    assert first["count"] == 5
    assert [f["key"] for f in first["results"]] == ["old-0", "old-1"]
    assert all(f["usage"]["stale"]["reason"] == "never_evaluated" for f in first["results"])
    rest = api.get("/v1/flags?stale=true&limit=10&offset=2").json()
    assert [f["key"] for f in rest["results"]] == ["old-2", "old-3", "old-4"]
    assert [f["key"] for f in other_api.get("/v1/flags?stale=true").json()["results"]] == ["theirs"]
    assert api.get("/v1/flags?stale=true&key_prefix=fresh").json()["count"] == 0
    assert api.get("/v1/flags?stale=false").json()["count"] == 6


def test_stale_list__pages_cover_every_stale_flag_once_whatever_the_reason(api, tenant):
    expected = []
    for i in range(9):
        key = f"f{i}"
        make_flag(tenant, key, **TWO)
        created_days_ago(tenant, key, 60)
        kind = i % 3
        if kind == 0:  # never evaluated
            expected.append(key)
        elif kind == 1:  # one variant only, for 40 days
            served(tenant, key, "on", hours_ago=24 * 40)
            served(tenant, key, "on", hours_ago=0)
            expected.append(key)
        else:  # both variants this week: not stale
            served(tenant, key, "on", hours_ago=1)
            served(tenant, key, "off", hours_ago=2)
    seen: list[str] = []
    url: str | None = "/v1/flags?stale=true&limit=2"
    pages = 0
    while url:
        page = api.get(url).json()
        assert page["count"] == len(expected)
        seen += [flag["key"] for flag in page["results"]]
        assert all(flag["usage"]["stale"] for flag in page["results"])
        url = page["next"]
        pages += 1
    assert seen == expected, "every stale flag once, in key order"
    assert pages == 3


def test_spans__after_a_prune__the_same_evidence_as_the_counts_kept(tenant, settings):
    from usage.models import UsageCount
    from usage.selectors import served_spans
    from usage.services import usage_prune

    settings.USAGE_RETENTION_DAYS = 30
    make_flag(tenant, "a", **TWO)
    for days in (40, 31, 20, 5):
        served(tenant, "a", "on", hours_ago=24 * days)
    served(tenant, "a", "off", hours_ago=24 * 35)  # only before the retention: goes with the prune

    usage_prune(timezone.now())

    kept = UsageCount.objects.for_tenant(tenant)
    assert served_spans(tenant=tenant) == {
        "a": {
            "on": {
                "first_hour": min(row.hour for row in kept),
                "last_hour": max(row.hour for row in kept),
            }
        }
    }
    assert min(row.hour for row in kept) == hour_of(timezone.now()) - timedelta(hours=24 * 20)


def test_stale_list__bounded_queries_for_many_flags(api, tenant, settings):
    settings.API_CLIENT_CHECK_INTERVAL = 3600  # as above: no credential re-check inside the count

    def queries_for(count: int) -> int:
        for i in range(count):
            make_flag(tenant, f"s{count}-{i:03}", **TWO)
            created_days_ago(tenant, f"s{count}-{i:03}", 40)
            served(tenant, f"s{count}-{i:03}", "on", hours_ago=24 * 35)
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/v1/flags?stale=true&limit=100").status_code == 200
        return len(ctx.captured_queries)

    queries_for(1)  # warm: the first request reads the credentials
    assert queries_for(3) == queries_for(30)


# -- reuse_key ------------------------------------------------------------------------------------


def test_reuse_key__archived_key_is_409_without_it(api, tenant):
    make_flag(tenant, "old")
    api.delete("/v1/flags/old")
    response = api.post("/v1/flags", {"key": "old"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    bad = api.post("/v1/flags", {"key": "old", "reuse_key": "yes"}, format="json")
    assert bad.status_code == 422 and "reuse_key" in bad.json()["error"]["details"]["fields"]


def test_reuse_key__creates_a_new_flag_and_audits_the_reuse(api, tenant):
    make_flag(tenant, "old", name="the old one")
    api.delete("/v1/flags/old")
    response = api.post("/v1/flags", {"key": "old", "name": "new", "reuse_key": True}, format="json")
    assert response.status_code == 201
    assert response.json()["version"] == 1 and response.json()["name"] == "new"
    actions = list(
        AuditEntry.all_tenants.filter(entity_key="old").order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["create", "archive", "reuse_key", "create"]
    reuse = AuditEntry.all_tenants.get(entity_key="old", action="reuse_key")
    assert reuse.before["name"] == "the old one" and reuse.after["key"].endswith("~old")
    archived = api.get("/v1/flags?include_archived=true").json()["results"]
    assert sorted(f["key"] for f in archived) == ["old", reuse.after["key"]]
    # reuse_key on a live key changes nothing: the usual idempotent create / conflict
    assert (
        api.post("/v1/flags", {"key": "old", "name": "new", "reuse_key": True}, format="json").status_code
        == 200
    )
    assert (
        api.post("/v1/flags", {"key": "old", "name": "other", "reuse_key": True}, format="json").status_code
        == 409
    )


def test_reuse_key__is_per_tenant(api, other_api, tenant, other_tenant):
    make_flag(other_tenant, "old")
    other_api.delete("/v1/flags/old")
    assert api.post("/v1/flags", {"key": "old"}, format="json").status_code == 201
