"""Usage counting (issue 15, item 1; api.md, Usage and lifecycle): the server's own evaluations are
counted in memory and flushed in batches, SDK reports arrive through `POST /v1/usage`, and a batch is
never counted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kernel.errors import Invalid
from tests.factories import make_flag
from usage.buffer import USAGE, UsageBuffer
from usage.models import UsageBatch, UsageCount
from usage.selectors import usage_of_flags
from usage.services import Batch, Count, hour_of, usage_record, usage_record_batches
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

ROLLOUT = {
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
    "off_variant": "off",
}


def totals(tenant: Any) -> dict[tuple[str, str, str], int]:
    counted: dict[tuple[str, str, str], int] = {}
    for row in UsageCount.objects.for_tenant(tenant):
        key = (row.flag_key, row.variant, row.reason)
        counted[key] = counted.get(key, 0) + row.n
    return counted


def current_hour() -> str:
    return hour_of(timezone.now()).isoformat().replace("+00:00", "Z")


def test_evaluate__counted_per_variant_and_reason_once_flushed(api, tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    make_flag(tenant, "dark", state="off", variants=ROLLOUT["variants"], off_variant="off")
    served: dict[str, int] = {}
    for i in range(40):
        answer = api.post(
            "/v1/evaluate", {"flag_key": "checkout", "user": {"id": f"u-{i}"}}, format="json"
        ).json()
        served[answer["variant"]] = served.get(answer["variant"], 0) + 1
    api.post("/v1/evaluate", {"flag_key": "dark", "user": {"id": "u-1"}}, format="json")

    assert totals(tenant) == {}, "nothing is written before a flush"
    USAGE.flush()

    assert totals(tenant) == {
        **{("checkout", variant, "PERCENTAGE_ROLLOUT"): n for variant, n in served.items()},
        ("dark", "off", "OFF"): 1,
    }
    assert len(served) == 2, "both variants served: the test would not notice a variant mix-up otherwise"


def test_evaluate__adds_no_database_write_to_the_request(api, tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    api.post("/v1/evaluate", {"flag_key": "checkout", "user": {"id": "warm"}}, format="json")

    with CaptureQueriesContext(connection) as queries:
        response = api.post("/v1/evaluate", {"flag_key": "checkout", "user": {"id": "u-1"}}, format="json")
        api.post("/v1/evaluate/bulk", {"user": {"id": "u-1"}}, format="json")

    assert response.status_code == 200
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]
    assert writes == []


def test_bulk__counts_every_served_flag_and_no_unknown_key(api, tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    make_flag(
        tenant,
        "banner",
        state="on",
        variants=ROLLOUT["variants"],
        off_variant="off",
        default={"variant": "on"},
    )

    api.post(
        "/v1/evaluate/bulk",
        {"user": {"id": "u-1"}, "flag_keys": ["checkout", "banner", "nope"]},
        format="json",
    )
    USAGE.flush()

    counted = totals(tenant)
    assert {key for key, _, _ in counted} == {"checkout", "banner"}
    assert counted[("banner", "on", "DEFAULT")] == 1


def test_flush__a_batch_that_committed_and_is_sent_again__not_counted_twice(tenant):
    buffer = UsageBuffer()
    buffer.add(tenant.pk, "checkout", "on", "DEFAULT", n=3)
    batches = buffer._batches(buffer._counts)  # what the flush below sends, ids and all
    buffer._counts = {}
    for batch in batches:
        usage_record(tenant_id=batch.tenant_id, batch_id=batch.batch_id, counts=batch.counts)

    buffer._pending = batches  # the commit went through, but this process never heard back
    buffer.flush()

    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 3}


def test_flush__counts_from_several_processes_add_up(tenant):
    first, second = UsageBuffer(), UsageBuffer()
    first.add(tenant.pk, "checkout", "on", "DEFAULT", n=2)
    second.add(tenant.pk, "checkout", "on", "DEFAULT", n=5)
    second.add(tenant.pk, "checkout", "off", "DEFAULT")

    first.flush()
    second.flush()

    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 7, ("checkout", "off", "DEFAULT"): 1}
    assert UsageBatch.objects.for_tenant(tenant).count() == 2


def test_flush__many_tenants__one_transaction_and_a_statement_per_table(tenant, other_tenant):
    buffer = UsageBuffer()
    buffer.add(tenant.pk, "checkout", "on", "DEFAULT", n=2)
    buffer.add(other_tenant.pk, "checkout", "off", "RULE_MATCH", n=3)
    buffer.add(other_tenant.pk, "banner", "on", "DEFAULT")

    with CaptureQueriesContext(connection) as queries:
        buffer.flush()

    writes = [q["sql"].split()[2] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert sorted(writes) == ["usage_usagebatch", "usage_usagecount", "usage_usagespan"]
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 2}
    assert totals(other_tenant) == {("checkout", "off", "RULE_MATCH"): 3, ("banner", "on", "DEFAULT"): 1}
    assert UsageBatch.objects.for_tenant(tenant).count() == 1
    assert UsageBatch.objects.for_tenant(other_tenant).count() == 1


def test_record_batches__a_seen_batch_among_new_ones__only_the_new_ones_counted(tenant, other_tenant):
    hour = hour_of(timezone.now())
    count = Count(flag_key="checkout", variant="on", reason="DEFAULT", hour=hour, n=4, last_at=hour)
    usage_record(tenant_id=tenant.pk, batch_id="b-1", counts=[count])

    counted = usage_record_batches(
        [
            Batch(tenant.pk, "b-1", [count]),  # sent again
            Batch(other_tenant.pk, "b-1", [count]),  # the same id, another tenant: its own
            Batch(tenant.pk, "b-2", [count]),
            Batch(tenant.pk, "b-2", [count]),  # twice in one call: once
        ]
    )

    assert counted == [False, True, True, False]
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 8}
    assert totals(other_tenant) == {("checkout", "on", "DEFAULT"): 4}


def test_flush__database_refuses__every_tenant_kept_and_sent_again_once(tenant, other_tenant):
    buffer = UsageBuffer()
    buffer.add(tenant.pk, "checkout", "on", "DEFAULT", n=2)
    buffer.add(other_tenant.pk, "checkout", "on", "DEFAULT", n=5)

    def refuse(execute: Any, sql: str, *args: Any) -> Any:
        if "usage_usagespan" in sql:
            raise RuntimeError("the database went away mid-flush")
        return execute(sql, *args)

    with connection.execute_wrapper(refuse):
        assert buffer.flush() == 0
    assert totals(tenant) == {} and totals(other_tenant) == {}  # nothing half-written

    assert buffer.flush() == 2
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 2}
    assert totals(other_tenant) == {("checkout", "on", "DEFAULT"): 5}


def test_flush__a_tenant_deleted_since__dropped_without_holding_back_the_others(tenant, other_tenant):
    buffer = UsageBuffer()
    buffer.add(tenant.pk, "checkout", "on", "DEFAULT", n=2)
    buffer.add(other_tenant.pk, "checkout", "on", "DEFAULT", n=5)
    gone = other_tenant.pk
    other_tenant.delete()  # its usage rows go with it (CASCADE); these counts were still in memory

    assert buffer.flush() == 1

    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 2}
    assert not UsageCount.all_tenants.filter(tenant_id=gone).exists()
    assert buffer._pending == []  # not kept: it would fail every flush after this one
    buffer.add(tenant.pk, "checkout", "on", "DEFAULT")
    assert buffer.flush() == 1
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 3}


def test_record_batches__a_deleted_tenant__not_counted_and_the_others_are(tenant, other_tenant):
    hour = hour_of(timezone.now())
    count = Count(flag_key="checkout", variant="on", reason="DEFAULT", hour=hour, n=4, last_at=hour)
    gone = other_tenant.pk
    other_tenant.delete()

    counted = usage_record_batches([Batch(gone, "b-1", [count]), Batch(tenant.pk, "b-1", [count])])

    assert counted == [False, True]
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 4}
    assert not UsageBatch.all_tenants.filter(tenant_id=gone).exists()


def test_flush__counts_go_to_their_own_hour():
    clock = [datetime(2026, 12, 1, 9, 59, 59, tzinfo=UTC).timestamp()]
    buffer = UsageBuffer(clock=lambda: clock[0])
    buffer.add(1, "checkout", "on", "DEFAULT")
    clock[0] += 2
    buffer.add(1, "checkout", "on", "DEFAULT")

    [batch] = buffer._batches(buffer._counts)

    assert sorted((c.hour.hour, c.n) for c in batch.counts) == [(9, 1), (10, 1)]


# --- POST /v1/usage ---------------------------------------------------------------------------------


def report(api: Any, counts: list[dict[str, Any]], batch_id: str = "sdk-1") -> Any:
    return api.post("/v1/usage", {"batch_id": batch_id, "counts": counts}, format="json")


def test_usage_report__202_and_counted_once_even_when_sent_twice(api, tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    counts = [{"flag_key": "checkout", "variant": "on", "reason": "DEFAULT", "hour": current_hour(), "n": 12}]

    first = report(api, counts)
    again = report(api, counts)

    assert first.status_code == 202 and again.status_code == 202
    assert first.json() == {"batch_id": "sdk-1", "duplicate": False, "ignored_flag_keys": []}
    assert again.json()["duplicate"] is True
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 12}


def test_usage_report__next_hour_within_clock_skew__counted_and_not_further(api, tenant, settings):
    from usage.reports import CLOCK_SKEW, parse_report

    now = datetime(2026, 12, 1, 10, 58, tzinfo=UTC)  # an SDK two minutes ahead already reads 11:00
    entry = {"flag_key": "checkout", "variant": "on", "reason": "DEFAULT", "n": 1}
    _, counts = parse_report(
        {"batch_id": "b", "counts": [{**entry, "hour": "2026-12-01T11:00:00Z"}]}, now=now
    )
    assert counts[0].hour == datetime(2026, 12, 1, 11, tzinfo=UTC)
    assert counts[0].last_at == now, "never later than its receipt"
    early = now - CLOCK_SKEW  # 10:53: 11:00 is further ahead than any clock skew allowed
    with pytest.raises(Invalid):
        parse_report({"batch_id": "b", "counts": [{**entry, "hour": "2026-12-01T11:00:00Z"}]}, now=early)


def test_usage_report__keys_of_no_flag_of_this_tenant__ignored_and_named(api, tenant, other_tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    make_flag(other_tenant, "theirs", **ROLLOUT)
    hour = current_hour()
    counts = [
        {"flag_key": key, "variant": "on", "reason": "DEFAULT", "hour": hour, "n": 1}
        for key in ("checkout", "theirs", "made-up")
    ]

    response = report(api, counts)

    assert response.json()["ignored_flag_keys"] == ["made-up", "theirs"]
    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 1}
    assert totals(other_tenant) == {}


def test_usage_report__same_bucket_twice_in_one_batch__summed(api, tenant):
    make_flag(tenant, "checkout", **ROLLOUT)
    entry = {"flag_key": "checkout", "variant": "on", "reason": "DEFAULT", "hour": current_hour(), "n": 2}

    assert report(api, [entry, entry]).status_code == 202

    assert totals(tenant) == {("checkout", "on", "DEFAULT"): 4}


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"hour": "2026-12-01T10:30:00Z"}, "counts[0].hour"),
        ({"hour": "2026-12-01T10:00:00"}, "counts[0].hour"),
        ({"hour": "2020-01-01T00:00:00Z"}, "counts[0].hour"),
        ({"hour": "9999-01-01T00:00:00Z"}, "counts[0].hour"),
        ({"n": 0}, "counts[0].n"),
        ({"n": True}, "counts[0].n"),
        ({"n": 10**12}, "counts[0].n"),
        ({"reason": "BECAUSE"}, "counts[0].reason"),
        ({"flag_key": ""}, "counts[0].flag_key"),
        ({"flag_key": "a\u0000b"}, "counts[0].flag_key"),
        ({"variant": "x" * 200}, "counts[0].variant"),
    ],
)
def test_usage_report__bad_entry__422_at_its_path_and_nothing_counted(api, tenant, entry, field):
    make_flag(tenant, "checkout", **ROLLOUT)
    good = {"flag_key": "checkout", "variant": "on", "reason": "DEFAULT", "hour": current_hour(), "n": 1}

    response = report(api, [{**good, **entry}])

    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["details"]["fields"]
    assert totals(tenant) == {} and UsageBatch.objects.for_tenant(tenant).count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"counts": []}, "batch_id"),
        ({"batch_id": "", "counts": []}, "batch_id"),
        ({"batch_id": "b", "counts": {}}, "counts"),
        ({"batch_id": "b", "counts": [1]}, "counts[0]"),
        ({"batch_id": "b", "counts": [{}] * 10_001}, "counts"),
    ],
)
def test_usage_report__bad_batch__422_naming_the_field(api, tenant, body, field):
    response = api.post("/v1/usage", body, format="json")

    assert response.status_code == 422
    assert field in response.json()["error"]["details"]["fields"]


def test_usage_report__needs_the_evaluate_scope(make_api, tenant):
    client = make_api(tenant, scopes=["flags:read"])

    response = report(client, [])

    assert response.status_code == 403


# --- Reading -----------------------------------------------------------------------------------------


def test_usage_of_flags__windows_of_24h_7d_30d_and_the_last_evaluation(tenant):
    now = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    hour = hour_of(now)

    def at(hours_ago: int, n: int, variant: str = "on") -> Count:
        start = hour - timedelta(hours=hours_ago)
        return Count("checkout", variant, "DEFAULT", start, n, start + timedelta(minutes=30))

    usage_record(
        tenant_id=tenant.pk,
        batch_id="b",
        counts=[
            at(0, 1),
            at(23, 2),
            at(24, 4),
            at(167, 8),
            at(168, 16),
            at(719, 32),
            at(720, 64),
            at(3, 5, "off"),
        ],
    )

    usage = usage_of_flags(tenant=tenant, flag_keys=["checkout", "never"], now=now)

    assert usage["checkout"]["counts"] == {
        "24h": {"on": 3, "off": 5},
        "7d": {"on": 15, "off": 5},
        "30d": {"on": 63, "off": 5},
    }
    assert usage["checkout"]["last_evaluated_at"] == hour + timedelta(minutes=30)
    assert usage["never"] == {"last_evaluated_at": None, "counts": {"24h": {}, "7d": {}, "30d": {}}}


def test_prune__forgets_old_batch_ids_and_counts_past_retention(tenant, settings):
    settings.USAGE_BATCH_RETENTION_HOURS = 48
    settings.USAGE_RETENTION_DAYS = 90
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=89)
    usage_record(
        tenant_id=tenant.pk, batch_id="old", counts=[Count("a", "on", "DEFAULT", old, 1, old)], now=old
    )
    usage_record(
        tenant_id=tenant.pk,
        batch_id="recent",
        counts=[Count("a", "on", "DEFAULT", recent, 1, recent)],
        now=now,
    )
    Worker(clock=lambda: now).prune_if_due()

    assert list(UsageBatch.objects.for_tenant(tenant).values_list("batch_id", flat=True)) == ["recent"]
    assert [row.hour for row in UsageCount.objects.for_tenant(tenant)] == [recent.replace(minute=0)]


def test_prune__deletes_in_bounded_batches(tenant, settings):
    settings.USAGE_RETENTION_DAYS = 90
    settings.RETENTION_BATCH_ROWS = 3
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    old = now - timedelta(days=91)
    usage_record(
        tenant_id=tenant.pk,
        batch_id="old",
        counts=[Count(f"f{i}", "on", "DEFAULT", old, 1, old) for i in range(7)],
        now=now,
    )

    with CaptureQueriesContext(connection) as ctx:
        Worker(clock=lambda: now).prune_if_due()

    assert not UsageCount.objects.for_tenant(tenant).exists()
    deletes = [
        q["sql"] for q in ctx.captured_queries if "DELETE" in q["sql"] and "usage_usagecount" in q["sql"]
    ]
    assert len(deletes) == 3, "7 rows, at most 3 per statement"
    assert all(sql.count(",") <= 2 for sql in deletes), deletes


def test_evaluate__usage_counting_off__not_counted(api, tenant, settings):
    make_flag(tenant, "checkout", **ROLLOUT)
    settings.USAGE_COUNTING = False
    api.post("/v1/evaluate", {"flag_key": "checkout", "user": {"id": "u-1"}}, format="json")
    api.post("/v1/evaluate/bulk", {"user": {"id": "u-1"}}, format="json")
    settings.USAGE_COUNTING = True
    api.post("/v1/evaluate", {"flag_key": "checkout", "user": {"id": "u-2"}}, format="json")
    USAGE.flush()

    assert sum(totals(tenant).values()) == 1, "only the evaluation made while counting was on"
