"""What the ruleset check costs one flag write in a tenant of 10,000 flags (issue 16, the write path).

Seeds a tenant of ``--flags`` flags (``_workloads.mixed_flags``: one in eight has a prerequisite; bulk
rows, validated by the engine) plus one plain flag ``lt-0``, in the database ``DATABASE_URL`` names
(migrated here; the tenant is reused by later runs). Then, round-robin, ``--rounds`` rounds, CPU time
(``time.process_time``) of this process, after one warm-up call of each and with the set-up heap
frozen (``gc.freeze``); PostgreSQL's own time is not in it:

- ``ruleset_check`` of a change that wrote ``lt-0`` (no prerequisite, no dependant), and of one that
  wrote ``flag-00006`` (it has a prerequisite), each in a transaction as under the write's lock;
- the read of the graph's edges it makes now, ``live_flag_edges`` (the prerequisites column as text,
  the rows decoded in one ``json.loads``);
- the baselines, the read it made before (reproduced here: the flags with prerequisites, three JSON
  columns decoded row by row), alone and swapped into the same ``ruleset_check`` calls.

    DATABASE_URL=postgres://.../<a scratch database> .venv/bin/python benchmarks/bench_write_check.py
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import _django_setup  # noqa: F401 - Django set up before the imports below
from _common import command_line, load_average, machine, median, spread, table, write_json
from _load_seed import load_flag, seed_big
from django.core.management import call_command
from django.db import transaction

from flags import integrity
from flags.integrity import ruleset_check
from flags.selectors import flag_queryset, live_flag_edges
from flags.services import flag_create
from kernel.context import acting_as
from tenancy.models import Tenant
from tenancy.ruleset import RulesetChange
from tenancy.services import tenant_create

SLUG = "write-check-bench"


def tenant_of(flags: int) -> Tenant:
    call_command("migrate", "--noinput", verbosity=0)
    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        with acting_as("system:bench_write_check"):
            tenant = tenant_create(slug=SLUG)
            seed_big(tenant, flags, "bulk")
            flag_create(tenant=tenant, data=load_flag(0))
    return tenant


def checked(tenant: Tenant, key: str, *, old_edges: bool = False) -> Callable[[], None]:
    """``ruleset_check`` of a change that wrote ``key``; with ``old_edges``, the check as it was
    before: the same function, its edges read by ``live_flag_graph`` (swapped in for the call)."""

    def run() -> None:
        with transaction.atomic():
            if old_edges:
                integrity.live_flag_edges = _old_edges  # type: ignore[assignment]
            try:
                ruleset_check(RulesetChange(tenant=tenant, flags={key}))
            finally:
                integrity.live_flag_edges = live_flag_edges

    return run


def _old_edges(*, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """What `live_flag_graph(with_prerequisites=True)` read before `live_flag_edges`."""
    rows = (
        flag_queryset(tenant=tenant)
        .exclude(prerequisites=[])
        .values_list("key", "variant_keys", "prerequisites", "segment_refs")
    )
    return {
        key: {
            "key": key,
            "variants": [{"key": variant} for variant in variant_keys],
            "prerequisites": prerequisites,
            "segments": segment_refs,
        }
        for key, variant_keys, prerequisites, segment_refs in rows
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    tenant = tenant_of(args.flags)
    edges = live_flag_edges(tenant=tenant)
    before = _old_edges(tenant=tenant)
    assert {k: v["prerequisites"] for k, v in edges.items()} == {
        k: v["prerequisites"] for k, v in before.items()
    }
    contenders: dict[str, Callable[[], Any]] = {
        "ruleset_check, a write of lt-0": checked(tenant, "lt-0"),
        "baseline: lt-0, edges read as before": checked(tenant, "lt-0", old_edges=True),
        "ruleset_check, a write of flag-00006 (a prerequisite)": checked(tenant, "flag-00006"),
        "baseline: flag-00006, edges read as before": checked(tenant, "flag-00006", old_edges=True),
        "the edges now: live_flag_edges": lambda: live_flag_edges(tenant=tenant),
        "baseline: the edges read as before": lambda: _old_edges(tenant=tenant),
    }
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():  # warm: the first call of each pays for imports and caches
        run()
    # What was set up is never garbage: frozen, a full collection during a sample does not walk it
    # (without this, one sample in ten paid a collection of the whole Django heap).
    gc.collect()
    gc.freeze()
    for _ in range(args.rounds):
        for name, run in contenders.items():
            began = time.process_time()
            run()
            cpu[name].append((time.process_time() - began) * 1000)
    rows = [[name, f"{median(values):.2f}", spread(values)] for name, values in cpu.items()]
    print(f"{machine()['date']}, load average {load_average()}; {len(edges)} flags with prerequisites")
    print(f"`{command_line()}`\n")
    print(table(["CPU ms (median of rounds)", "ms", "spread"], rows))
    write_json(
        args.json,
        {
            "benchmark": "write_check",
            "machine": machine(),
            "flags": args.flags,
            "edges": len(edges),
            "cpu_ms": cpu,
        },
    )


if __name__ == "__main__":
    main()
