"""Seed the load test's database through the services (run by bench_load.py, in its own process).

    python benchmarks/_load_seed.py OUT.json TENANTS BIG_FLAGS FLAGS_PER_TENANT {bulk,import}

Tenants, API clients and the `lt-N` flags of every tenant go through the same service functions as the
API (`tenant_create`, `api_client_create`, `flag_create`); tokens come from `token_issue`, the function
behind `POST /v1/auth/token`. The big tenant's flags:

- `import`: `ruleset_import`, the path of `manage.py import_flags` (versions, audit entries and events
  as for any import). At 10,000 flags it takes many minutes: its ruleset check validates each written
  flag against the whole prerequisite graph (`flags.integrity.broken_flags` -> `validate_flag` ->
  `check_prerequisite_graph`), quadratic in the flags written (RESULTS.md, 2026-12-01 load test).
- `bulk` (default): segments and flags validated by the engine and inserted with `bulk_create`, the
  benchmark-only path of `bench_compile.py`: no audit entries or events for them. The big tenant's
  `lt-N` flags are then created through `flag_create`, which bumps its ruleset version, so every process
  compiles the bulk rows, and every write of the load itself goes through the API.

Each phase is timed; the times are part of the report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")

import django  # noqa: E402

django.setup()

from _workloads import mixed_flags, mixed_segments  # noqa: E402
from django.db import transaction  # noqa: E402
from flagsvc_sdk.engine import validate_flag, validate_segment  # noqa: E402

from flags.config_io import ruleset_import  # noqa: E402
from flags.models import Flag  # noqa: E402
from flags.services import flag_create  # noqa: E402
from kernel.context import acting_as  # noqa: E402
from segments.models import Segment  # noqa: E402
from tenancy.models import Tenant  # noqa: E402
from tenancy.scoping import tenant_scope  # noqa: E402
from tenancy.services import api_client_create, tenant_create, token_issue  # noqa: E402

SCOPES = ["evaluate", "flags:write"]


def load_flag(index: int, on_weight: int = 50) -> dict[str, object]:
    """The flags the load test evaluates and writes: a country rule, else a rollout by id."""
    return {
        "key": f"lt-{index}",
        "type": "boolean",
        "state": "on",
        "variants": [
            {"key": "on", "value": True, "weight": on_weight},
            {"key": "off", "value": False, "weight": 100 - on_weight},
        ],
        "off_variant": "off",
        "rules": [
            {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
        ],
        "default": None,
    }


def seed_big(tenant: Tenant, count: int, how: str) -> None:
    segments = mixed_segments()
    segment_keys = [segment["key"] for segment in segments]
    documents = mixed_flags(count, segment_keys)
    if how == "import":
        ruleset_import(
            tenant=tenant, document={"format_version": 1, "segments": segments, "flags": documents}
        )
        return
    with tenant_scope(tenant), transaction.atomic():
        rows: list[Segment] = []
        for doc in segments:
            segment = Segment(tenant=tenant)
            segment.apply_content(validate_segment(doc))
            rows.append(segment)
        Segment.objects.bulk_create(rows)
        flags: list[Flag] = []
        for doc in documents:
            flag = Flag(tenant=tenant)
            flag.apply_content(validate_flag(doc, segment_keys=segment_keys))
            flags.append(flag)
        Flag.objects.bulk_create(flags, batch_size=500)


def main() -> None:
    out, tenants, big_flags, per_tenant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    how = sys.argv[5]
    timings: dict[str, float] = {}
    tokens: dict[str, str] = {}
    started = time.perf_counter()
    with acting_as("system:bench_load"):
        slugs = ["big"] + [f"t{index:04d}" for index in range(1, tenants)]
        for slug in slugs:
            tenant = tenant_create(slug=slug, name=slug)
            issued = api_client_create(tenant=tenant, scopes=SCOPES, name="load test")
            token = token_issue(client_id=issued.client.client_id, client_secret=issued.client_secret)
            assert token is not None
            tokens[slug] = token.access_token
            if slug == "big" and big_flags:
                began = time.perf_counter()
                seed_big(tenant, big_flags, how)
                timings[f"big_tenant_{how}_s"] = time.perf_counter() - began
            for index in range(per_tenant):
                flag_create(tenant=tenant, data=load_flag(index))
        timings["tenants_and_small_flags_s"] = (
            time.perf_counter() - started - timings.get(f"big_tenant_{how}_s", 0.0)
        )
    timings["total_s"] = time.perf_counter() - started
    Path(out).write_text(json.dumps({"tokens": tokens, "timings": timings}))


if __name__ == "__main__":
    main()
