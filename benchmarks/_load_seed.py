"""Seed the load test's database through the services (run by bench_load.py, in its own process).

    python benchmarks/_load_seed.py OUT.json TENANTS BIG_FLAGS FLAGS_PER_TENANT

Every write goes through the same service functions as the API (`tenant_create`, `api_client_create`,
`flag_create`, and for the big tenant `ruleset_import`, the path of `manage.py import_flags`: one ruleset
change, versions and audit entries written as for any import). Tokens come from `token_issue`, the function
behind `POST /v1/auth/token`. Each phase is timed; the times are part of the report.
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

from flags.config_io import ruleset_import  # noqa: E402
from flags.services import flag_create  # noqa: E402
from kernel.context import acting_as  # noqa: E402
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


def main() -> None:
    out, tenants, big_flags, per_tenant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
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
            for index in range(per_tenant):
                flag_create(tenant=tenant, data=load_flag(index))
        timings["tenants_and_small_flags_s"] = time.perf_counter() - started
        if big_flags:
            from tenancy.models import Tenant

            big = Tenant.objects.get(slug="big")
            segments = mixed_segments()
            document = {
                "format_version": 1,
                "segments": segments,
                "flags": mixed_flags(big_flags, [segment["key"] for segment in segments]),
            }
            began = time.perf_counter()
            ruleset_import(tenant=big, document=document)
            timings["big_tenant_import_s"] = time.perf_counter() - began
    timings["total_s"] = time.perf_counter() - started
    Path(out).write_text(json.dumps({"tokens": tokens, "timings": timings}))


if __name__ == "__main__":
    main()
