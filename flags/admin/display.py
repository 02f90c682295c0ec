"""How flags read in the admin's list: a one-line rollout summary and the list filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from flags.models import Flag
from flags.selectors import with_tag


def percent_text(share: float, *, space: bool = True) -> str:
    """`20 %`, `12.5 %` (`20%` in the list's compact column)."""
    sign = " %" if space else "%"
    return f"{share:.0f}{sign}" if abs(share - round(share)) < 0.05 else f"{share:.1f}{sign}"


def shares_of(entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Each variant with a weight and its share in percent (weights are normalised, rules.md)."""
    total = sum(weight for _, weight in entries)
    if total <= 0:
        return []
    return [(key, weight * 100 / total) for key, weight in entries if weight > 0]


def split_text(entries: list[tuple[str, float]]) -> str:
    """`20% on / 80% off`; a single variant with all the weight reads as its key."""
    shares = shares_of(entries)
    if not shares:
        return "nobody"
    if len(shares) == 1:
        return shares[0][0]
    return " / ".join(f"{percent_text(share, space=False)} {key}" for key, share in shares)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def serve_entries(serve: Any, variants: list[Any]) -> list[tuple[str, float]]:
    """A serve (rules.md `<serve>`) as (variant, weight); `None` is the split by the variants' weights."""
    if isinstance(serve, dict) and isinstance(serve.get("variant"), str):
        return [(str(serve["variant"]), 1.0)]
    if isinstance(serve, dict) and isinstance(serve.get("distribution"), list):
        entries = [e for e in serve["distribution"] if isinstance(e, dict)]
        return [(str(e.get("variant")), _number(e.get("weight"))) for e in entries]
    return [(str(v.get("key")), _number(v.get("weight"))) for v in variants if isinstance(v, dict)]


def serve_shares(serve: Any, variants: list[Any]) -> list[tuple[str, float]]:
    return shares_of(serve_entries(serve, variants))


def serve_text(serve: Any, variants: list[dict[str, Any]]) -> str:
    """What a serve gives, in the list's compact form (`on`, `20% on / 80% off`)."""
    return split_text(serve_entries(serve, variants))


def rollout_summary(flag: Flag) -> str:
    """One line a product manager can scan: `rule→on, else 20% on / 80% off`."""
    if flag.archived_at is not None:
        return "archived"
    if flag.state != "on":
        return f"off → {flag.off_variant}"
    variants = flag.variants if isinstance(flag.variants, list) else []
    parts: list[str] = []
    allow = (flag.targets or {}).get("allow") or []
    if allow:
        parts.append(f"{len(allow)} allowed→{(flag.targets or {}).get('allow_variant') or 'on'}")
    rules = flag.rules if isinstance(flag.rules, list) else []
    if len(rules) == 1 and isinstance(rules[0], dict):
        parts.append(f"rule→{serve_text(rules[0].get('serve'), variants)}")
    elif rules:
        parts.append(f"{len(rules)} rules")
    fallback = serve_text(flag.default, variants)
    return f"{', '.join(parts)}, else {fallback}" if parts else fallback


class ArchivedFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("no", "Live"), ("yes", "Archived")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(archived_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class TagFilter(admin.SimpleListFilter):
    """The tags in use on the flags the person can see."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        tags: set[str] = set()
        for value in model_admin.get_queryset(request).values_list("tags", flat=True):
            if isinstance(value, list):
                tags.update(str(tag) for tag in value)
        return [(tag, tag) for tag in sorted(tags)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        tag = self.value()
        return with_tag(queryset, tag) if tag else queryset
