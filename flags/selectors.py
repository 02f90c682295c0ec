"""Reads of flags. Every function names its tenant."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from flags.models import Flag, FlagVersion, PurgedFlagKey, segment_keys_in
from kernel import text_match
from segments.selectors import attributes_in, segment_attributes
from tenancy.models import Tenant


def flag_queryset(*, tenant: Tenant | int, include_archived: bool = False) -> QuerySet[Flag]:
    qs: QuerySet[Flag] = Flag.objects.for_tenant(tenant).all()
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    return qs.order_by("key")


def flag_get(*, tenant: Tenant | int, key: str, include_archived: bool = False) -> Flag | None:
    return flag_queryset(tenant=tenant, include_archived=include_archived).filter(key=key).first()


def flag_list(
    *,
    tenant: Tenant | int,
    state: str | None = None,
    tag: str | None = None,
    type: str | None = None,
    key_prefix: str | None = None,
    q: str | None = None,
    include_archived: bool = False,
) -> QuerySet[Flag]:
    qs = flag_queryset(tenant=tenant, include_archived=include_archived)
    if state:
        qs = qs.filter(state=state)
    if type:
        qs = qs.filter(type=type)
    if tag:
        qs = with_tag(qs, tag)
    if key_prefix:
        qs = qs.filter(text_match.starts_with("key", key_prefix))
    if q:
        qs = qs.filter(Q(key__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    return qs


def flag_keys_in(*, tenant: Tenant | int, keys: set[str]) -> set[str]:
    """Which of `keys` name a flag of the tenant, live or archived."""
    if not keys:
        return set()
    return set(
        flag_queryset(tenant=tenant, include_archived=True).filter(key__in=keys).values_list("key", flat=True)
    )


def purged_flag_keys(*, tenant: Tenant | int) -> list[str]:
    """The keys of the tenant's purged flags, still reserved (flags.retention)."""
    return list(PurgedFlagKey.objects.for_tenant(tenant).values_list("key", flat=True))


def with_tag(qs: QuerySet[Flag], tag: str) -> QuerySet[Flag]:
    """The flags of `qs` that carry `tag` (the API's `tag` and the admin's tag filter).

    PostgreSQL: the tags array contains it (`@>`, on the GIN index of migration 0005); elsewhere the
    newline-framed `tags_index` contains it (SQLite has no JSON containment). The same answer.
    """
    if connection.vendor == "postgresql":
        return qs.filter(tags__contains=[tag])
    return qs.filter(text_match.contains("tags_index", f"\n{tag}\n"))


def live_flag_contents(
    *, tenant: Tenant | int, keys: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Key → content of every live flag (or of those among `keys`)."""
    qs = flag_queryset(tenant=tenant)
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    return {flag.key: flag.content() for flag in qs}


def live_flag_graph(
    *,
    tenant: Tenant | int,
    keys: Collection[str] | None = None,
    with_segments: bool = False,
) -> dict[str, dict[str, Any]]:
    """Key → what validating a flag's references needs of live flags, from the stored dependency
    columns instead of the documents: `variants` (keys only), `prerequisites`, and `segments` (the keys
    its rules refer to). `validate_flag(..., live_flags=)` reads only the first two.

    All live flags by default; or only those among `keys`, or only those whose rules use a segment.
    (The edges of the prerequisite graph alone: `live_flag_edges`.)
    """
    qs = flag_queryset(tenant=tenant)
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    if with_segments:
        qs = qs.exclude(segment_refs=[])
    rows = qs.values_list("key", "variant_keys", "prerequisites", "segment_refs")
    return {
        key: {
            "key": key,
            "variants": [{"key": variant} for variant in variant_keys],
            "prerequisites": prerequisites,
            "segments": segment_refs,
        }
        for key, variant_keys, prerequisites, segment_refs in rows
    }


def live_flag_edges(*, tenant: Tenant | int) -> dict[str, dict[str, Any]]:
    """Key → `{"key", "prerequisites"}` for every live flag that has prerequisites: the edges of the
    tenant's prerequisite graph, which a ruleset check walks for cycles and depth (`live_flag_graph`
    gives the variants of the flags a check needs them of).

    The column is read as text and the rows decoded in one `json.loads`: decoding each row's JSON on
    its own (and the two columns a walk does not read) was most of the CPU of a flag write at 10,000
    flags (benchmarks/RESULTS.md, the write check).
    """
    rows = list(
        flag_queryset(tenant=tenant)
        .exclude(prerequisites=[])
        .values_list("key", Cast("prerequisites", output_field=TextField()))
    )
    if not rows:
        return {}
    decoded = json.loads("[" + ",".join(text for _, text in rows) + "]")
    return {
        key: {"key": key, "prerequisites": prerequisites}
        for (key, _), prerequisites in zip(rows, decoded, strict=True)
    }


def live_flags_for_evaluation(*, tenant: Tenant | int) -> list[Flag]:
    return list(flag_queryset(tenant=tenant))


def live_flags_with_keys(*, tenant: Tenant | int, keys: Collection[str]) -> list[Flag]:
    """The live flags among `keys` (one query on the tenant's key index); archived or gone ones are absent."""
    return list(flag_queryset(tenant=tenant).filter(key__in=list(keys))) if keys else []


def flags_using_segment(*, tenant: Tenant | int, segment_key: str) -> list[str]:
    """Keys of the live flags whose rules refer to the segment (a segment may not go while in use)."""
    return flags_by_segment(tenant=tenant).get(segment_key, [])


def flags_by_segment(*, tenant: Tenant | int) -> dict[str, list[str]]:
    """Segment key → keys of the live flags that refer to it, for a whole tenant in one query."""
    usage: dict[str, list[str]] = {}
    for flag in flag_queryset(tenant=tenant).only("key", "rules"):
        for segment_key in segment_keys_in(flag.rules):
            usage.setdefault(segment_key, []).append(flag.key)
    return usage


def flag_versions(*, tenant: Tenant | int, flag: Flag) -> QuerySet[FlagVersion]:
    return FlagVersion.objects.for_tenant(tenant).filter(flag=flag).order_by("-version")


def flag_version_get(*, tenant: Tenant | int, flag: Flag, version: int) -> FlagVersion | None:
    return flag_versions(tenant=tenant, flag=flag).filter(version=version).first()


def attributes_in_use(*, tenant: Tenant | int) -> list[str]:
    """The user attributes the tenant's flags (rules, `bucket_by`) and segments already use, sorted,
    `id` first: what the admin's condition builders offer in their attribute pickers."""
    found = segment_attributes(tenant=tenant)
    for rules, bucket_by in flag_queryset(tenant=tenant, include_archived=True).values_list(
        "rules", "bucket_by"
    ):
        found |= attributes_in(rules)
        if isinstance(bucket_by, str) and bucket_by:
            found.add(bucket_by)
    found.discard("id")
    return ["id", *sorted(found)]
