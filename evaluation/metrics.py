"""Our own Prometheus series. No label may grow without bound: no user ids, flag keys or raw paths."""

from __future__ import annotations

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
