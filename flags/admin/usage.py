"""The flag admin's usage displays (issue 15, item 3): the list's "Last evaluated" column and
lifecycle/stale badge, the "Stale" filter, and on the flag page the served variants per day over the
last 30 days as a server-rendered inline SVG, with the share per reason. Staleness is the one rule of
flags.staleness; the rule share is not shown (usage counts are per variant and reason, not per rule).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from flags.admin.vocabulary import format_datetime
from flags.models import Flag, FlagLifecycle
from flags.staleness import clean_up, stale_flags, staleness_of, usage_documents
from tenancy.models import Tenant
from usage.selectors import daily_usage, served_spans

USAGE_ATTR = "_flagsvc_usage"
PALETTE = ("#2f7ebd", "#e08a2c", "#3c9d5d", "#b9485a", "#7a5bbf", "#8a8f98")
REASON_WORDS = {
    "OFF": "flag off",
    "PREREQUISITE_FAILED": "prerequisite not met",
    "TARGET_MATCH": "targeted user",
    "RULE_MATCH": "a rule matched",
    "DEFAULT": "default",
    "PERCENTAGE_ROLLOUT": "percentage rollout",
    "ERROR": "error",
}
STALE_WORDS = {
    "never_evaluated": "never evaluated",
    "not_evaluated_recently": "not evaluated lately",
    "single_variant": "one variant only",
    "past_remove_after": "past removal date",
}


def attach_usage(flags: list[Flag]) -> None:
    """Each flag's `usage` (flags.staleness) on the object, three queries per tenant on the page."""
    by_tenant: dict[int, list[Flag]] = defaultdict(list)
    for flag in flags:
        by_tenant[flag.tenant_id].append(flag)
    for page in by_tenant.values():
        documents = usage_documents(tenant=page[0].tenant, flags=page)
        for flag in page:
            setattr(flag, USAGE_ATTR, documents[flag.key])


def usage_of(flag: Flag) -> dict[str, Any]:
    if not hasattr(flag, USAGE_ATTR):
        attach_usage([flag])
    return dict(getattr(flag, USAGE_ATTR))


def last_evaluated_column(flag: Flag) -> str:
    value = usage_of(flag)["last_evaluated_at"]
    return format_datetime(datetime.fromisoformat(value)) if value else "never"


def lifecycle_badge(flag: Flag) -> SafeString:
    stale = usage_of(flag)["stale"]
    badge = format_html(
        '<span class="flagsvc-life flagsvc-life-{}">{}</span>', flag.lifecycle, flag.lifecycle
    )
    if stale is None:
        return badge
    return format_html(
        '{} <span class="flagsvc-life flagsvc-life-stale" title="since {}">stale: {}</span>',
        badge,
        format_datetime(datetime.fromisoformat(stale["since"])),
        STALE_WORDS.get(stale["reason"], stale["reason"]),
    )


class StaleFilter(admin.SimpleListFilter):
    """Live flags that flags.staleness calls stale, per tenant in view (three queries per tenant)."""

    title = "stale"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("yes", "Stale"), ("no", "Not stale")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() not in ("yes", "no"):
            return queryset
        live = queryset.filter(archived_at__isnull=True)
        stale_pks: list[int] = []
        now = timezone.now()
        for tenant in Tenant.objects.filter(pk__in=live.values("tenant_id")):
            keys = [
                key for key, _, _ in stale_flags(tenant=tenant, flags=live.filter(tenant=tenant), now=now)
            ]
            stale_pks.extend(live.filter(tenant=tenant, key__in=keys).values_list("pk", flat=True))
        if self.value() == "yes":
            return live.filter(pk__in=stale_pks)
        return live.exclude(pk__in=stale_pks)


def usage_panel(flag: Flag) -> SafeString:
    """Last evaluated, counts, staleness with the clean-up in words, the 30-day chart, reasons."""
    now = timezone.now()
    usage = usage_of(flag)
    lines = [
        format_html(
            "<p><strong>Last evaluated:</strong> {}. <strong>Lifecycle:</strong> {}{}.</p>",
            last_evaluated_column(flag),
            flag.lifecycle,
            f", remove after {flag.remove_after.isoformat()}" if flag.remove_after else "",
        )
    ]
    stale = None
    if not flag.is_archived:
        spans = served_spans(tenant=flag.tenant, flag_keys=[flag.key]).get(flag.key, {})
        last = usage["last_evaluated_at"]
        stale = staleness_of(
            lifecycle=flag.lifecycle,
            remove_after=flag.remove_after,
            created_at=flag.created_at,
            last_evaluated_at=datetime.fromisoformat(last) if last else None,
            spans=spans,
            now=now,
        )
    if stale is not None:
        lines.append(
            format_html(
                '<p class="flagsvc-stale-note"><strong>Stale ({}):</strong> {}</p>',
                STALE_WORDS.get(stale.reason, stale.reason),
                clean_up(flag.key, stale),
            )
        )
    elif flag.lifecycle == FlagLifecycle.PERMANENT:
        lines.append(mark_safe("<p>Permanent: only a passed removal date makes it stale.</p>"))
    counts = usage["counts"]
    lines.append(
        format_html(
            "<p>Evaluations: {} in 24 h, {} in 7 days, {} in 30 days.</p>",
            sum(counts["24h"].values()),
            sum(counts["7d"].values()),
            sum(counts["30d"].values()),
        )
    )
    daily = daily_usage(tenant=flag.tenant, flag_key=flag.key, now=now)
    lines.append(_chart(daily["days"], daily["by_day"]))
    total = sum(daily["by_reason"].values())
    if total:
        lines.append(
            format_html(
                '<p class="flagsvc-reasons"><strong>Why served (30 days):</strong> {}</p>',
                format_html_join(
                    "; ",
                    "{} {}%",
                    (
                        (REASON_WORDS.get(reason, reason), round(100 * n / total))
                        for reason, n in sorted(daily["by_reason"].items(), key=lambda item: -item[1])
                    ),
                ),
            )
        )
    return format_html_join("", "{}", ((line,) for line in lines))


def _chart(days: list[datetime], by_day: list[dict[str, int]]) -> SafeString:
    """Stacked bars, one per day, one colour per variant, as inline SVG (no script)."""
    variants = sorted({variant for day in by_day for variant in day})
    if not variants:
        return mark_safe("<p>No evaluations counted in the last 30 days.</p>")
    colour = {variant: PALETTE[i % len(PALETTE)] for i, variant in enumerate(variants)}
    peak = max(sum(day.values()) for day in by_day) or 1
    bar, gap, height = 14, 4, 120
    width = len(days) * (bar + gap)
    parts: list[SafeString] = []
    for i, (day, served) in enumerate(zip(days, by_day, strict=True)):
        y = float(height)
        for variant in variants:
            n = served.get(variant, 0)
            if not n:
                continue
            h = height * n / peak
            y -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} served {}</title></rect>',
                    i * (bar + gap),
                    f"{y:.1f}",
                    bar,
                    f"{h:.1f}",
                    colour[variant],
                    day.date().isoformat(),
                    n,
                    variant,
                )
            )
    axis = format_html(
        '<text x="0" y="{}" class="flagsvc-axis">{}</text><text x="{}" y="{}" text-anchor="end" '
        'class="flagsvc-axis">{}</text>',
        height + 14,
        days[0].date().isoformat(),
        width - gap,
        height + 14,
        days[-1].date().isoformat(),
    )
    legend = format_html_join(
        " ",
        '<span class="flagsvc-legend"><span style="background:{}"></span>{}</span>',
        ((colour[v], v) for v in variants),
    )
    return format_html(
        '<div class="flagsvc-usage-chart"><svg role="img" aria-label="Served variants per day, last 30 days" '
        'width="{}" height="{}" viewBox="0 0 {} {}">{}{}</svg><div>{} <small>(peak {} a day)</small></div></div>',
        width,
        height + 18,
        width,
        height + 18,
        format_html_join("", "{}", ((p,) for p in parts)),
        axis,
        legend,
        peak,
    )
