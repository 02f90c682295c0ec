"""Which flags are stale, from evidence (api.md, Usage and lifecycle): the one home of the rule. The API
(each flag's `usage.stale`, `GET /v1/flags?stale=true`), the admin (badge, "Stale" filter) and
`manage.py flag_report --stale` all call `staleness_of`, through `usage_documents` (a page of flags) or
`stale_keys` (every live flag of a tenant).

N = `STALE_AFTER_DAYS` (30). The reasons, first match wins:

- `past_remove_after`: the flag's `remove_after` date has passed (since the day after it). Any lifecycle.
- A permanent flag is stale for no other reason: a kill switch that always serves `off`, an entitlement
  nobody evaluates this month, are what it is for, not debt.
- `never_evaluated`: no evaluation counted and the flag is older than N days (since its creation). When
  it is older than the counts kept (USAGE_RETENTION_DAYS), the evidence may have been pruned: then it is
  `not_evaluated_recently`, since the oldest hour kept ("at least since").
- `not_evaluated_recently`: the last evaluation is more than N days old (since that evaluation).
- `single_variant`: one variant served alone for at least N days, from the hourly buckets (since the
  hour after another variant was last served, or the first hour it was served).

Work: a page of flags costs three queries (`usage_of_flags`: two; `served_spans`: one); every live flag
of a tenant (the stale list) costs two (the flags' lifecycle columns; the tenant's usage spans, one row
per flag and variant served: `usage.models.UsageSpan`, kept with the counts), linear in the tenant's
flags and their variants, not in the hourly counts (at 10,000 flags and 90 days those are tens of
millions of rows; benchmarks/bench_stale_list.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from flags.models import Flag, FlagLifecycle
from kernel.timefmt import iso
from tenancy.models import Tenant
from usage.selectors import VariantSpan, evidence, served_spans, usage_of_flags

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Staleness:
    reason: str  # never_evaluated | not_evaluated_recently | single_variant | past_remove_after
    since: datetime
    variant: str | None = None  # single_variant: the one variant served

    def to_document(self) -> dict[str, Any]:
        return {"reason": self.reason, "since": iso(self.since)}


def stale_after() -> timedelta:
    return timedelta(days=settings.STALE_AFTER_DAYS)


def staleness_of(
    *,
    lifecycle: str,
    remove_after: date | None,
    created_at: datetime,
    last_evaluated_at: datetime | None,
    spans: dict[str, VariantSpan],
    now: datetime,
) -> Staleness | None:
    """Whether one flag is stale, and why (the module's docstring lists the rules)."""
    if remove_after is not None and now.date() > remove_after:
        return Staleness("past_remove_after", datetime.combine(remove_after + timedelta(days=1), time(), UTC))
    if lifecycle == FlagLifecycle.PERMANENT:
        return None
    cutoff = now - stale_after()
    if last_evaluated_at is None:
        if created_at > cutoff:
            return None
        kept_since = now - timedelta(days=settings.USAGE_RETENTION_DAYS)
        if created_at < kept_since:
            return Staleness("not_evaluated_recently", kept_since)
        return Staleness("never_evaluated", created_at)
    if last_evaluated_at <= cutoff:
        return Staleness("not_evaluated_recently", last_evaluated_at)
    recent = [variant for variant, span in spans.items() if span["last_hour"] + HOUR > cutoff]
    if len(recent) != 1:
        return None
    served = recent[0]
    since = max(
        [spans[served]["first_hour"]]
        + [span["last_hour"] + HOUR for variant, span in spans.items() if variant != served]
    )
    return Staleness("single_variant", since, served) if since <= cutoff else None


def usage_documents(
    *, tenant: Tenant, flags: list[Flag], now: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """Each flag's `usage` object (api.md) for a page of flags, in three queries."""
    now = now or timezone.now()
    keys = [flag.key for flag in flags]
    usage = usage_of_flags(tenant=tenant, flag_keys=keys, now=now)
    spans = served_spans(tenant=tenant, flag_keys=keys)
    documents: dict[str, dict[str, Any]] = {}
    for flag in flags:
        facts = usage[flag.key]
        stale = (
            None
            if flag.is_archived
            else staleness_of(
                lifecycle=flag.lifecycle,
                remove_after=flag.remove_after,
                created_at=flag.created_at,
                last_evaluated_at=facts["last_evaluated_at"],
                spans=spans.get(flag.key, {}),
                now=now,
            )
        )
        documents[flag.key] = {
            "last_evaluated_at": iso(facts["last_evaluated_at"]),
            "counts": facts["counts"],
            "stale": stale.to_document() if stale is not None else None,
        }
    return documents


def stale_flags(
    *, tenant: Tenant, flags: QuerySet[Flag], now: datetime | None = None
) -> list[tuple[str, Staleness, datetime | None]]:
    """(key, why, last evaluated) of the stale flags among `flags` (live flags of `tenant`), in the
    queryset's order: two queries however many flags (see the module's docstring)."""
    now = now or timezone.now()
    latest, spans = evidence(tenant=tenant)
    result = []
    for key, lifecycle, remove_after, created_at in flags.values_list(
        "key", "lifecycle", "remove_after", "created_at"
    ):
        stale = staleness_of(
            lifecycle=lifecycle,
            remove_after=remove_after,
            created_at=created_at,
            last_evaluated_at=latest.get(key),
            spans=spans.get(key, {}),
            now=now,
        )
        if stale is not None:
            result.append((key, stale, latest.get(key)))
    return result


def clean_up(key: str, stale: Staleness) -> str:
    """What to do about a stale flag, in words (the report, the admin)."""
    day = stale.since.date().isoformat()
    if stale.reason == "past_remove_after":
        return f"its removal date passed on {day}: remove `{key}` from the code and archive it, or move the date."
    if stale.reason == "single_variant":
        return (
            f"serves `{stale.variant}` to everyone since {day}: remove the flag and keep the "
            f"`{stale.variant}` code path (or mark it permanent if it is a switch to keep)."
        )
    if stale.reason == "never_evaluated":
        return (
            f"never evaluated since it was created on {day}: if no code reads `{key}`, archive it; "
            "if the code is not released yet, set a remove_after date."
        )
    return (
        f"not evaluated since {day}: the code that read `{key}` is probably gone; archive the flag "
        "(or mark it permanent if it guards a rare path, such as a kill switch)."
    )
