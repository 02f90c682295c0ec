"""Our own Prometheus series. No label may grow without bound: no user ids or raw paths; flag keys and
rule ids only in the one bounded per-flag series at the end."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from flagsvc_sdk.engine.results import REASONS
from prometheus_client import Counter, Gauge, Histogram

EVALUATIONS = Counter("flagsvc_evaluations_total", "Flag evaluations by reason", ["reason"])
EVALUATION_LATENCY = Histogram(
    "flagsvc_evaluation_seconds",
    "Time spent in the engine per evaluation request (excluding HTTP)",
    ["route"],
    buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
CACHE_HITS = Counter(
    "flagsvc_ruleset_cache_hits_total", "Evaluations answered from a compiled ruleset in memory"
)
CACHE_MISSES = Counter("flagsvc_ruleset_cache_misses_total", "Ruleset lookups that had to compile")
CACHE_STALE_SERVES = Counter(
    "flagsvc_ruleset_cache_stale_total",
    "Lookups served from the last compiled ruleset because the store was down",
)
COMPILE_SECONDS = Histogram(
    "flagsvc_ruleset_compile_seconds",
    "Time to load and compile one tenant's ruleset",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMPILES = Counter(
    "flagsvc_ruleset_compiles_total",
    "Ruleset compiles by kind: full (the whole tenant) or incremental (only what changed, ADR 0018)",
    ["kind"],
)
COMPILES_FULL = COMPILES.labels(kind="full")
COMPILES_INCREMENTAL = COMPILES.labels(kind="incremental")
CACHE_EVICTIONS = Counter(
    "flagsvc_ruleset_cache_evictions_total",
    "Compiled rulesets dropped as least recently used to stay within RULESET_CACHE_MAX_FLAGS",
)
# Under gunicorn with several workers (prometheus_client multiprocess mode, see gunicorn.conf.py) the
# gauge reports the value of the live worker that compiled the tenant's ruleset most recently.
LIVE_FLAGS = Gauge(
    "flagsvc_live_flags",
    "Live (non-archived) flags in the last compiled ruleset",
    ["tenant"],
    multiprocess_mode="livemostrecent",
)
SNAPSHOT_BUILD_SECONDS = Histogram(
    "flagsvc_snapshot_build_seconds",
    "Time to read, serialise and sign one tenant's snapshot (once per ruleset version and process)",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SNAPSHOT_BYTES = Gauge(
    "flagsvc_snapshot_bytes",
    "Size of the tenant's last built snapshot body, uncompressed",
    ["tenant"],
    multiprocess_mode="livemostrecent",
)


# Label children bound once: `.labels(...)` costs ~2 µs a call on the evaluation hot path, a bound
# child ~0.5 µs (benchmarks/RESULTS.md).
EVALUATIONS_BY_REASON = {reason: EVALUATIONS.labels(reason=reason) for reason in REASONS}
EVALUATE_LATENCY = EVALUATION_LATENCY.labels(route="evaluate")
BULK_LATENCY = EVALUATION_LATENCY.labels(route="bulk")


def count_evaluations(reason: str, count: int = 1) -> None:
    child = EVALUATIONS_BY_REASON.get(reason) or EVALUATIONS.labels(reason=reason)
    child.inc(count)


# Evaluations by flag and by rule (issue 15, item 5): one series, one increment per evaluation (~0.9 µs
# with the child bound). Flag keys and rule ids are labels here, and only here, under two bounds
# (docs/operations.md, Metrics): a key is counted only once the engine found it live in the tenant's
# ruleset (a key a caller makes up is a 404 or a FLAG_NOT_FOUND, never a label), and a process binds at
# most `METRICS_FLAG_LABELS_MAX` label sets; past it new ones count under `_other` in all three labels.
# Not recorded for the admin's playground. The tenant is a label (its slug): keys are unique only
# within a tenant. Per flag: `sum by (tenant, flag)`; a rule's share: its series over that sum.
OTHER = "_other"
NO_RULE = "_none"
"""The `rule` of an answer no rule gave: off, a target, a prerequisite, the default."""
FLAG_EVALUATIONS = Counter(
    "flagsvc_flag_evaluations",
    "Evaluations of each live flag, by the rule that answered (rule_id of the result; _none: no rule)",
    ["tenant", "flag", "rule"],
)
_FLAG_CHILDREN: dict[tuple[int, str, str | None], Any] = {}


def _flag_child(tenant_id: int, tenant_slug: str, flag_key: str, rule_id: str | None) -> Any:
    """The child of (tenant, flag, rule), bound once; the `_other` child once the process holds the cap."""
    if len(_FLAG_CHILDREN) >= settings.METRICS_FLAG_LABELS_MAX:
        return FLAG_EVALUATIONS.labels(tenant=OTHER, flag=OTHER, rule=OTHER)
    child = FLAG_EVALUATIONS.labels(tenant=tenant_slug, flag=flag_key, rule=rule_id or NO_RULE)
    _FLAG_CHILDREN[(tenant_id, flag_key, rule_id)] = child
    return child


def count_flag_evaluation(tenant_id: int, tenant_slug: str, flag_key: str, rule_id: str | None) -> None:
    """One evaluation of a flag the engine found live (never call it for FLAG_NOT_FOUND)."""
    child = _FLAG_CHILDREN.get((tenant_id, flag_key, rule_id))
    (child or _flag_child(tenant_id, tenant_slug, flag_key, rule_id)).inc()


def count_flag_evaluations(
    tenant_id: int, tenant_slug: str, evaluated: Iterable[tuple[str, str | None]]
) -> None:
    """`count_flag_evaluation` for each (flag key, rule id) of a bulk evaluation."""
    children = _FLAG_CHILDREN
    for flag_key, rule_id in evaluated:
        child = children.get((tenant_id, flag_key, rule_id))
        (child or _flag_child(tenant_id, tenant_slug, flag_key, rule_id)).inc()


def forget_flag_children() -> None:
    """Tests: start from no bound children (the registry keeps the series already exposed)."""
    _FLAG_CHILDREN.clear()
