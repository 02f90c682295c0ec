"""`GET /v1/flags?stale=true` of a tenant with 10,000 flags and their hourly usage (issue 15, item 2).

Seeds a tenant of ``--flags`` flags (bulk rows, created 60 days ago): a quarter never evaluated, a quarter
last evaluated 40 days ago, half evaluated every hour of the last ``--days`` days with two variants,
so about half are stale. The hourly counts are inserted by SQL (PostgreSQL ``generate_series``) and the
spans built from them (``usage_spans_rebuild``). Then, round-robin, ``--rounds`` rounds, wall time:

- the request, through the whole Django stack in this process (``django.test.Client``, a real token);
- the evidence it reads now: the tenant's spans (``usage.selectors.evidence``), one row per flag and
  variant;
- the baseline, what the list read before the spans: every hourly count of the tenant, grouped by flag
  (last evaluation) and by flag and variant (first and last hour), the two queries reproduced here.

Wall time, since most of the work is PostgreSQL's (another process): note the load average.

    DATABASE_URL=postgres://.../<an empty database> .venv/bin/python benchmarks/bench_stale_list.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ["USAGE_FLUSH_SECONDS"] = "0"

import _django_setup  # noqa: F401 - Django set up before the imports below
from _common import header, machine, median, spread, table, write_json
from django.core.management import call_command
from django.db import connection
from django.db.models import Max, Min
from django.test import Client
from flagsvc_sdk.engine import validate_flag

from flags.models import Flag
from flags.staleness import stale_flags
from kernel.context import acting_as
from tenancy.models import Tenant
from tenancy.scoping import tenant_scope
from tenancy.services import api_client_create, tenant_create, token_issue
from usage.models import UsageCount, UsageSpan
from usage.selectors import evidence
from usage.services import usage_spans_rebuild

SLUG = "stale-bench"

COUNTS_SQL = """
INSERT INTO usage_usagecount (tenant_id, flag_key, variant, reason, hour, n, last_at)
SELECT %(tenant)s, 'f-' || lpad(i::text, 5, '0'), v, 'PERCENTAGE_ROLLOUT', hours.hour, 10,
       hours.hour + interval '30 minutes'
FROM generate_series(0, %(flags)s - 1) AS i,
     LATERAL (SELECT date_trunc('hour', now()) - make_interval(hours => h) AS hour
              FROM generate_series(0, CASE WHEN i %% 4 = 1 THEN 3 ELSE %(hours)s - 1 END) AS h) AS hours,
     unnest(ARRAY['on', 'off']) AS v
WHERE i %% 4 >= 2 OR (i %% 4 = 1 AND v = 'on')
"""
"""i % 4 = 0: never evaluated; 1: four hours, moved 40 days back below; 2, 3: every hour, both variants."""


def reuse() -> tuple[Tenant, str, dict[str, float]]:
    """The tenant an earlier run seeded (``--reuse``), with a token of a new client."""
    call_command("migrate", "--noinput", verbosity=0)
    tenant = Tenant.objects.get(slug=SLUG)
    with acting_as("system:bench_stale_list"):
        issued = api_client_create(tenant=tenant, scopes=["flags:read"], name="bench")
    token = token_issue(client_id=issued.client.client_id, client_secret=issued.client_secret)
    assert token is not None
    return tenant, token.access_token, {}


def seed(flags: int, days: int) -> tuple[Tenant, str, dict[str, float]]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    if Tenant.objects.filter(slug=SLUG).exists():
        sys.exit(f"tenant {SLUG} exists: use an empty database, or --reuse it")
    with acting_as("system:bench_stale_list"):
        tenant = tenant_create(slug=SLUG)
        issued = api_client_create(tenant=tenant, scopes=["flags:read"], name="bench")
        token = token_issue(client_id=issued.client.client_id, client_secret=issued.client_secret)
        assert token is not None
        document = validate_flag(
            {
                "key": "x",
                "state": "on",
                "variants": [
                    {"key": "on", "value": True, "weight": 50},
                    {"key": "off", "value": False, "weight": 50},
                ],
                "off_variant": "off",
            }
        )
        rows = []
        for i in range(flags):
            flag = Flag(tenant=tenant)
            flag.apply_content({**document, "key": f"f-{i:05d}"})
            rows.append(flag)
        with tenant_scope(tenant):
            Flag.objects.bulk_create(rows, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE flags_flag SET created_at = now() - interval '60 days' WHERE tenant_id = %s", [tenant.pk]
        )
        timings["flags_s"] = time.perf_counter() - started
        began = time.perf_counter()
        cursor.execute(COUNTS_SQL, {"tenant": tenant.pk, "flags": flags, "hours": days * 24})
        cursor.execute(
            "UPDATE usage_usagecount SET hour = hour - interval '40 days', last_at = last_at - interval '40 days' "
            "WHERE tenant_id = %s AND right(flag_key, 5)::int %% 4 = 1",
            [tenant.pk],
        )
        cursor.execute("ANALYZE usage_usagecount")
        timings["counts_s"] = time.perf_counter() - began
    began = time.perf_counter()
    usage_spans_rebuild(tenant_id=tenant.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_usagespan")
    timings["spans_s"] = time.perf_counter() - began
    return tenant, token.access_token, timings


def baseline(tenant: Tenant) -> int:
    """The two grouped scans of every hourly count the stale list made before the spans."""
    counts = UsageCount.objects.for_tenant(tenant)
    latest = {r["flag_key"]: r["latest"] for r in counts.values("flag_key").annotate(latest=Max("last_at"))}
    spans = list(
        counts.exclude(variant="")
        .values("flag_key", "variant")
        .annotate(first_hour=Min("hour"), last_hour=Max("hour"))
    )
    return len(latest) + len(spans)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7, help="days of hourly counts of the busy flags")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--reuse", action="store_true", help="measure the tenant an earlier run seeded")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit(
            "Set DATABASE_URL to an empty PostgreSQL database (the counts are seeded with generate_series)."
        )
    tenant, access_token, timings = reuse() if args.reuse else seed(args.flags, args.days)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access_token}", HTTP_X_TENANT_ID=SLUG)
    rows = {
        "counts": UsageCount.objects.for_tenant(tenant).count(),
        "spans": UsageSpan.objects.for_tenant(tenant).count(),
    }
    first = client.get("/v1/flags?stale=true&limit=50")
    assert first.status_code == 200, first.content[:300]
    stale_count = first.json()["count"]
    last_page = client.get(f"/v1/flags?stale=true&limit=50&offset={stale_count - 10}").json()
    assert len(last_page["results"]) == 10
    assert all(f["usage"]["stale"] for f in last_page["results"])
    contenders: dict[str, Any] = {
        "GET /v1/flags?stale=true&limit=50 (whole request)": lambda: client.get(
            "/v1/flags?stale=true&limit=50"
        ),
        "the stale judgement (flags + spans + staleness_of)": lambda: stale_flags(
            tenant=tenant, flags=Flag.objects.for_tenant(tenant).filter(archived_at=None).order_by("key")
        ),
        "evidence now: the tenant's spans": lambda: evidence(tenant=tenant),
        "baseline: the two grouped scans of the hourly counts": lambda: baseline(tenant),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            samples[name].append((time.perf_counter() - began) * 1000)
            cpu[name].append((time.process_time() - began_cpu) * 1000)
    out = {
        "benchmark": "stale_list",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "flags": args.flags,
        "days": args.days,
        "rows": rows,
        "stale": stale_count,
        "seed_timings": timings,
        "ms": samples,
        "python_cpu_ms": cpu,
        "db_execution_ms": explain(tenant),
    }
    print(header("GET /v1/flags?stale=true at 10,000 flags (PostgreSQL)"))
    print(
        f"{args.flags:,} flags, {stale_count:,} stale; {rows['counts']:,} hourly count rows "
        f"({args.days} days of the busy half), {rows['spans']:,} span rows; wall ms, median of "
        f"{args.rounds} rounds (spread)\n"
    )
    print(
        table(
            ["what", "wall ms", "this process's CPU ms"],
            [
                [name, f"{median(values):,.1f} ({spread(values)})", f"{median(cpu[name]):,.1f}"]
                for name, values in samples.items()
            ],
        )
    )
    print()
    print("PostgreSQL's own execution time (EXPLAIN ANALYZE, median of 3):")
    for name, ms in out["db_execution_ms"].items():
        print(f"- {name}: {ms:,.1f} ms")
    write_json(args.json, out)


def explain(tenant: Tenant) -> dict[str, float]:
    """The database's side of the evidence, load on this process left out."""
    queries = {
        "spans (now)": "SELECT flag_key, variant, first_hour, last_hour, last_at FROM usage_usagespan "
        "WHERE tenant_id = %s",
        "counts by flag (before)": "SELECT flag_key, MAX(last_at) FROM usage_usagecount WHERE tenant_id = %s "
        "GROUP BY flag_key",
        "counts by flag and variant (before)": "SELECT flag_key, variant, MIN(hour), MAX(hour) "
        "FROM usage_usagecount WHERE tenant_id = %s AND NOT variant = '' GROUP BY flag_key, variant",
    }
    result = {}
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            times = []
            for _ in range(3):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, [tenant.pk])
                times.append(float(cursor.fetchone()[0][0]["Execution Time"]))
            result[name] = median(times)
    return result


if __name__ == "__main__":
    main()
