"""Reading usage: what each flag served in the last 24 hours, 7 and 30 days, and when it was last
served (api.md, Usage and lifecycle)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db.models import Max, Q, Sum

from usage.models import UsageCount, UsageSpan
from usage.services import hour_of

WINDOWS = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24}


class FlagUsage(TypedDict):
    last_evaluated_at: datetime | None
    counts: dict[str, dict[str, int]]


def usage_of_flags(*, tenant: Any, flag_keys: Iterable[str], now: datetime) -> dict[str, FlagUsage]:
    """Each flag's usage, for a page of flags in two queries. A window of N hours is the current hour
    and the N-1 before it; counts are per variant (answers that served none are left out). The first
    query answers one row per flag and variant (the database sums the windows), the second reads the
    spans: neither grows with the hours counted."""
    keys = list(flag_keys)
    current = hour_of(now)
    since = current - timedelta(hours=WINDOWS["30d"] - 1)
    result: dict[str, FlagUsage] = {
        key: {"last_evaluated_at": None, "counts": {window: {} for window in WINDOWS}} for key in keys
    }
    if not keys:
        return result
    # The database sums each window (one row per flag and variant), not Python over every hour of it.
    sums = {
        f"n_{window}": Sum("n", filter=Q(hour__gte=current - timedelta(hours=hours - 1)))
        for window, hours in WINDOWS.items()
    }
    rows = (
        UsageCount.objects.for_tenant(tenant)
        .filter(flag_key__in=keys, hour__gte=since)
        .exclude(variant="")
        .values("flag_key", "variant")
        .annotate(**sums)
    )
    for row in rows:
        for window in WINDOWS:
            total = row[f"n_{window}"]
            if total:
                result[row["flag_key"]]["counts"][window][row["variant"]] = int(total)
    latest = (
        UsageSpan.objects.for_tenant(tenant)
        .filter(flag_key__in=keys)
        .values("flag_key")
        .annotate(latest=Max("last_at"))
    )
    for row in latest:
        result[row["flag_key"]]["last_evaluated_at"] = row["latest"]
    return result


class VariantSpan(TypedDict):
    first_hour: datetime
    last_hour: datetime


def served_spans(*, tenant: Any, flag_keys: Iterable[str] | None = None) -> dict[str, dict[str, VariantSpan]]:
    """For each flag, each variant it served (within the counts kept, USAGE_RETENTION_DAYS): the first
    and the last hour it was served. One query on the spans (`UsageSpan`: one row per flag and variant,
    kept with the counts); `flag_keys=None` reads every flag of the tenant (the stale list)."""
    qs = UsageSpan.objects.for_tenant(tenant).exclude(variant="")
    if flag_keys is not None:
        keys = list(flag_keys)
        if not keys:
            return {}
        qs = qs.filter(flag_key__in=keys)
    spans: dict[str, dict[str, VariantSpan]] = {}
    for flag_key, variant, first_hour, last_hour in qs.values_list(
        "flag_key", "variant", "first_hour", "last_hour"
    ):
        spans.setdefault(flag_key, {})[variant] = {"first_hour": first_hour, "last_hour": last_hour}
    return spans


def last_evaluated(*, tenant: Any) -> dict[str, datetime]:
    """When each flag of the tenant was last evaluated (any answer, errors too): one query on the spans."""
    rows = UsageSpan.objects.for_tenant(tenant).values("flag_key").annotate(latest=Max("last_at"))
    return {row["flag_key"]: row["latest"] for row in rows}


def evidence(*, tenant: Any) -> tuple[dict[str, datetime], dict[str, dict[str, VariantSpan]]]:
    """`last_evaluated` and `served_spans` of every flag of the tenant in one read of its spans (the
    stale list): rows = the tenant's flags x the variants they served, whatever the evaluations."""
    latest: dict[str, datetime] = {}
    spans: dict[str, dict[str, VariantSpan]] = {}
    rows = UsageSpan.objects.for_tenant(tenant).values_list(
        "flag_key", "variant", "first_hour", "last_hour", "last_at"
    )
    for flag_key, variant, first_hour, last_hour, last_at in rows:
        seen = latest.get(flag_key)
        if seen is None or last_at > seen:
            latest[flag_key] = last_at
        if variant:
            spans.setdefault(flag_key, {})[variant] = {"first_hour": first_hour, "last_hour": last_hour}
    return latest, spans


class DailyUsage(TypedDict):
    days: list[datetime]  # the start of each UTC day, oldest first
    by_day: list[dict[str, int]]  # per day: variant -> evaluations
    by_reason: dict[str, int]  # the whole period: reason -> evaluations


def daily_usage(*, tenant: Any, flag_key: str, now: datetime, days: int = 30) -> DailyUsage:
    """One flag's served variants per UTC day over the last `days` days (today included) and the share
    of each reason over the period, from the hourly buckets: one query (the admin's chart)."""
    today = hour_of(now).replace(hour=0)
    first = today - timedelta(days=days - 1)
    day_list = [first + timedelta(days=i) for i in range(days)]
    by_day: list[dict[str, int]] = [{} for _ in day_list]
    by_reason: dict[str, int] = {}
    rows = (
        UsageCount.objects.for_tenant(tenant)
        .filter(flag_key=flag_key, hour__gte=first)
        .values("variant", "reason", "hour")
        .annotate(total=Sum("n"))
    )
    for row in rows:
        index = (row["hour"] - first).days
        n = int(row["total"])
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + n
        if 0 <= index < days and row["variant"]:
            by_day[index][row["variant"]] = by_day[index].get(row["variant"], 0) + n
    return {"days": day_list, "by_day": by_day, "by_reason": by_reason}
