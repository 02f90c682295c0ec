"""Writing usage: one door for every source of counts (the server's flushes, SDK reports)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenancy.models import Tenant
from usage.models import UsageBatch, UsageCount, UsageSpan

logger = logging.getLogger("flagsvc.usage")

ROWS_PER_STATEMENT = 500


@dataclass(frozen=True, order=True)
class Count:
    """`n` evaluations of one flag that served `variant` for `reason` in the UTC hour starting at `hour`."""

    flag_key: str
    variant: str
    reason: str
    hour: datetime
    n: int
    last_at: datetime


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Batch:
    """One source's counts for one tenant, under an id that makes sending it again harmless."""

    tenant_id: int
    batch_id: str
    counts: Sequence[Count]


def usage_record(
    *, tenant_id: int, batch_id: str, counts: Sequence[Count], now: datetime | None = None
) -> bool:
    """Add a batch's counts, once: False (and nothing added) when the tenant's batch id was seen before.

    The batch id and the counts commit together, so a flush that fails after the commit and is retried
    with the same id, or an SDK that resends a batch whose answer it lost, is not counted twice.
    """
    return usage_record_batches([Batch(tenant_id, batch_id, counts)], now=now)[0]


def usage_record_batches(batches: Sequence[Batch], *, now: datetime | None = None) -> list[bool]:
    """Add several batches, of any tenants, in one transaction and a handful of statements: for each
    batch, whether it was counted (False: its id was seen before, or its tenant no longer exists, and
    none of its counts were added).

    The server's flush sends one batch per tenant it served; at 1,000 tenants a transaction per batch
    cost a worker a fifth of its busy time (benchmarks/RESULTS.md, load profile). Set-based, the cost
    is per row, not per tenant. A tenant deleted since its counts were taken is left out here: its
    rows would break the statement (a foreign key) for every tenant in it, at every retry.
    """
    if not batches:
        return []
    received = now or timezone.now()
    with transaction.atomic():
        tenant_ids = {batch.tenant_id for batch in batches}
        live = _existing_tenants(tenant_ids)
        if live != tenant_ids:
            gone = sorted(tenant_ids - live)
            logger.warning("usage counts of deleted tenants dropped", extra={"tenant_ids": gone})
        new = _claim([batch for batch in batches if batch.tenant_id in live], received)
        counted: list[bool] = []
        rows: list[Row] = []
        for batch in batches:
            fresh = (batch.tenant_id, batch.batch_id) in new
            new.discard((batch.tenant_id, batch.batch_id))  # the same id twice in one call: once
            counted.append(fresh)
            if fresh:
                rows += [(batch.tenant_id, count) for count in batch.counts]
        merged = _merged(rows)
        _add(merged)
        _widen_spans(merged)
    return counted


def _existing_tenants(tenant_ids: set[int]) -> set[int]:
    """Which of these tenants exist now (read in the caller's transaction)."""
    return set(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", flat=True))


def _claim(batches: Sequence[Batch], received: datetime) -> set[tuple[int, str]]:
    """Insert the batch ids; the (tenant id, batch id) pairs that were not there before."""
    table = UsageBatch._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    ids = sorted({(b.tenant_id, b.batch_id) for b in batches})
    new: set[tuple[int, str]] = set()
    for start in range(0, len(ids), ROWS_PER_STATEMENT):
        chunk = ids[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for tenant_id, batch_id in chunk:
            params += [tenant_id, batch_id, adapt(received)]
        values = ", ".join(["(%s, %s, %s)"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, batch_id, received_at) VALUES {values} "  # noqa: S608 - our own table name; values are parameters
                "ON CONFLICT (tenant_id, batch_id) DO NOTHING RETURNING tenant_id, batch_id",
                params,
            )
            new.update((int(tenant_id), str(batch_id)) for tenant_id, batch_id in cursor.fetchall())
    return new


Row = tuple[int, Count]  # tenant id, count


def _merged(rows: Sequence[Row]) -> list[Row]:
    """One row per bucket (an upsert may touch a row once per statement), sorted: every writer locks
    the rows in one order, so two flushes never deadlock."""
    buckets: dict[tuple[int, str, str, str, datetime], Count] = {}
    for tenant_id, count in rows:
        key = (tenant_id, count.flag_key, count.variant, count.reason, count.hour)
        seen = buckets.get(key)
        if seen is not None:
            count = Count(*key[1:], n=seen.n + count.n, last_at=max(seen.last_at, count.last_at))
        buckets[key] = count
    return sorted((key[0], count) for key, count in buckets.items())


def _add(rows: Sequence[Row]) -> None:
    table = UsageCount._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for tenant_id, count in chunk:
            params += [
                tenant_id,
                count.flag_key,
                count.variant,
                count.reason,
                adapt(count.hour),
                count.n,
                adapt(count.last_at),
            ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, flag_key, variant, reason, hour, n, last_at) "  # noqa: S608 - our own table name; values are parameters
                f"VALUES {values} "
                "ON CONFLICT (tenant_id, flag_key, variant, reason, hour) DO UPDATE SET "
                f"n = {table}.n + excluded.n, "
                f"last_at = CASE WHEN excluded.last_at > {table}.last_at "
                f"THEN excluded.last_at ELSE {table}.last_at END",
                params,
            )


def _widen_spans(rows: Sequence[Row]) -> None:
    """Stretch each (tenant, flag, variant) span over the hours of `rows` (UsageSpan), in key order
    (the same lock order in every writer, as `_merged` does for the counts)."""
    spans: dict[tuple[int, str, str], list[datetime]] = {}
    for tenant_id, count in rows:
        span = spans.get((tenant_id, count.flag_key, count.variant))
        if span is None:
            spans[(tenant_id, count.flag_key, count.variant)] = [count.hour, count.hour, count.last_at]
        else:
            span[0], span[1], span[2] = (
                min(span[0], count.hour),
                max(span[1], count.hour),
                max(span[2], count.last_at),
            )
    table = UsageSpan._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    ordered = sorted(spans.items())
    for start in range(0, len(ordered), ROWS_PER_STATEMENT):
        chunk = ordered[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for (tenant_id, flag_key, variant), (first, last, last_at) in chunk:
            params += [tenant_id, flag_key, variant, adapt(first), adapt(last), adapt(last_at)]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, flag_key, variant, first_hour, last_hour, last_at) "  # noqa: S608 - our own table name; values are parameters
                f"VALUES {values} "
                "ON CONFLICT (tenant_id, flag_key, variant) DO UPDATE SET "
                f"first_hour = CASE WHEN excluded.first_hour < {table}.first_hour "
                f"THEN excluded.first_hour ELSE {table}.first_hour END, "
                f"last_hour = CASE WHEN excluded.last_hour > {table}.last_hour "
                f"THEN excluded.last_hour ELSE {table}.last_hour END, "
                f"last_at = CASE WHEN excluded.last_at > {table}.last_at "
                f"THEN excluded.last_at ELSE {table}.last_at END",
                params,
            )


SPANS_FROM_COUNTS = (
    "INSERT INTO usage_usagespan (tenant_id, flag_key, variant, first_hour, last_hour, last_at) "
    "SELECT tenant_id, flag_key, variant, MIN(hour), MAX(hour), MAX(last_at) FROM usage_usagecount "
    "WHERE tenant_id = %s GROUP BY tenant_id, flag_key, variant"
)
"""Build a tenant's spans from its counts (the migration that added spans does the same for all)."""


def usage_spans_rebuild(*, tenant_id: int) -> None:
    """Recompute a tenant's spans from its counts (counts written behind `usage_record`'s back:
    benchmarks' bulk seeding)."""
    with transaction.atomic():
        UsageSpan.objects.for_tenant(tenant_id).all().delete()
        with connection.cursor() as cursor:
            cursor.execute(SPANS_FROM_COUNTS, [tenant_id])


def _narrow_spans(cutoff: datetime) -> int:
    """After counts before `cutoff` went: spans with no count left go; spans that began before it
    begin at their first hour kept. In batches, like the counts."""
    gone = delete_in_batches(UsageSpan.all_tenants.filter(last_hour__lt=cutoff))
    first_kept = (
        UsageCount.all_tenants.filter(
            tenant_id=OuterRef("tenant_id"),
            flag_key=OuterRef("flag_key"),
            variant=OuterRef("variant"),
            hour__gte=cutoff,
        )
        .order_by("hour")
        .values("hour")[:1]
    )
    size = settings.RETENTION_BATCH_ROWS
    while True:
        keys = list(UsageSpan.all_tenants.filter(first_hour__lt=cutoff).values_list("pk", flat=True)[:size])
        if not keys:
            return gone
        UsageSpan.all_tenants.filter(pk__in=keys).update(
            first_hour=Coalesce(Subquery(first_kept), F("last_hour"))
        )


def usage_prune(now: datetime) -> int:
    """Forget batch ids past USAGE_BATCH_RETENTION_HOURS and counts past USAGE_RETENTION_DAYS, at most
    RETENTION_BATCH_ROWS rows per statement (each its own short transaction: a prune of millions of
    hourly rows never holds one long lock or builds one huge statement). Safe from several workers."""
    batches = delete_in_batches(
        UsageBatch.all_tenants.filter(
            received_at__lt=now - timedelta(hours=settings.USAGE_BATCH_RETENTION_HOURS)
        )
    )
    cutoff = now - timedelta(days=settings.USAGE_RETENTION_DAYS)
    counts = delete_in_batches(UsageCount.all_tenants.filter(hour__lt=cutoff))
    _narrow_spans(cutoff)
    return batches + counts


def delete_in_batches(rows: QuerySet[Any], *, batch: int | None = None) -> int:
    """Delete `rows` `batch` at a time (RETENTION_BATCH_ROWS by default); how many were deleted. Never
    one unbounded DELETE. Each batch is one plain `DELETE ... WHERE id IN (...)`: for rows of a model
    that nothing refers to and no receiver needs (the ORM's delete() would load every row to send
    post_delete signals)."""
    size = batch or settings.RETENTION_BATCH_ROWS
    table = connection.ops.quote_name(rows.model._meta.db_table)
    deleted = 0
    while True:
        keys = list(rows.order_by().values_list("pk", flat=True)[:size])
        if not keys:
            return deleted
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN ({', '.join(['%s'] * len(keys))})",  # noqa: S608 - our table; values are parameters
                keys,
            )
            deleted += cursor.rowcount
        if len(keys) < size:
            return deleted
