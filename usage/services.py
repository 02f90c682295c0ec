"""Writing usage: one door for every source of counts (the server's flushes, SDK reports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from usage.models import UsageBatch, UsageCount

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


def usage_record(
    *, tenant_id: int, batch_id: str, counts: Sequence[Count], now: datetime | None = None
) -> bool:
    """Add a batch's counts, once: False (and nothing added) when the tenant's batch id was seen before.

    The batch id and the counts commit together, so a flush that fails after the commit and is retried
    with the same id, or an SDK that resends a batch whose answer it lost, is not counted twice.
    """
    received = now or timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                UsageBatch.objects.for_tenant(tenant_id).create(
                    tenant_id=tenant_id, batch_id=batch_id, received_at=received
                )
        except IntegrityError:
            return False
        _add(tenant_id, _merged(counts))
    return True


def _merged(counts: Sequence[Count]) -> list[Count]:
    """One row per bucket (an upsert may touch a row once per statement), sorted: every writer locks
    the rows in one order, so two flushes never deadlock."""
    buckets: dict[tuple[str, str, str, datetime], Count] = {}
    for count in counts:
        key = (count.flag_key, count.variant, count.reason, count.hour)
        seen = buckets.get(key)
        if seen is not None:
            count = Count(*key, n=seen.n + count.n, last_at=max(seen.last_at, count.last_at))
        buckets[key] = count
    return sorted(buckets.values())


def _add(tenant_id: int, counts: Sequence[Count]) -> None:
    table = UsageCount._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    for start in range(0, len(counts), ROWS_PER_STATEMENT):
        chunk = counts[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for count in chunk:
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


def usage_prune(now: datetime) -> int:
    """Forget batch ids past USAGE_BATCH_RETENTION_HOURS and counts past USAGE_RETENTION_DAYS."""
    batches, _ = UsageBatch.all_tenants.filter(
        received_at__lt=now - timedelta(hours=settings.USAGE_BATCH_RETENTION_HOURS)
    ).delete()
    counts, _ = UsageCount.all_tenants.filter(
        hour__lt=now - timedelta(days=settings.USAGE_RETENTION_DAYS)
    ).delete()
    return batches + counts
