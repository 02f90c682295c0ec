"""Compile: how long a tenant with 10,000 flags takes to compile, in the engine and in the server.

Engine (``compile_ruleset`` on 10k generated valid flags of eight shapes, 20 segments), against a
baseline measured in the same run: ``json.loads`` of the same documents (just reading the data).
Also: ``validate_flag`` alone, compile with the garbage collector off, and what a full collection
costs while the compiled ruleset is in memory (a pause every request in that process waits for).

Engine, also: the memory a compiled ruleset holds per 1,000 flags (``tracemalloc``, after a full
collection), ``recompile`` of one changed flag and of one changed segment (ADR 0018), and
``evaluate_many`` of every flag for one user.

Server (unless ``--no-server``): a throwaway SQLite database seeded with the same 10k flags, then
``evaluation.cache.build_ruleset(tenant, version)`` (ORM load + mappers + compile) against a raw
``sqlite3`` fetch of the same rows with their JSON columns decoded. Seeding uses ``bulk_create``
(benchmark-only: no audit rows or versions, which ``build_ruleset`` does not read).

Server, incremental (ADR 0018): a write through the services (``flag_update``: the ruleset check under
the lock included), then the CPU (``time.process_time``) another process spends to apply it: a
second ``RulesetCache`` that compiled the tenant before the write, as another worker holds it, catching
up from the outbox. Baseline in the same run: the old way, a full ``build_ruleset`` of the tenant.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CLOCK, REPO, header, machine, median, spread, table, write_json
from _workloads import TENANT, mixed_flags, mixed_segments, shape_names


def sample(fn: Callable[[], Any], *, gc_on: bool) -> float:
    """Seconds for one call; the heap is collected first so every sample starts alike."""
    gc.collect()
    if gc_on:
        gc.enable()
    else:
        gc.disable()
    try:
        started = CLOCK()
        result = fn()
        elapsed = CLOCK() - started
    finally:
        gc.enable()
    del result
    return elapsed


def rounds_of(contenders: dict[str, tuple[Callable[[], Any], bool]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (fn, gc_on) in contenders.items():
            samples[name].append(sample(fn, gc_on=gc_on))
    return samples


def engine_part(count: int, rounds: int) -> dict[str, Any]:
    import time
    import tracemalloc

    from flagsvc_sdk.engine import compile_ruleset, evaluate_many, recompile, validate_flag, validate_user

    segments = mixed_segments()
    segment_keys = [segment["key"] for segment in segments]
    flags = [{**doc, "version": 1} for doc in mixed_flags(count, segment_keys)]
    encoded = json.dumps(flags)

    def compile_() -> Any:
        return compile_ruleset(tenant=TENANT, version="1", flags=flags, segments=segments)

    def validate() -> Any:
        return [
            validate_flag({k: v for k, v in flag.items() if k != "version"}, segment_keys=segment_keys)
            for flag in flags
        ]

    contenders = {
        "baseline: json.loads of the documents": (lambda: json.loads(encoded), True),
        "validate_flag x N": (validate, True),
        "compile_ruleset (gc on, as in the server)": (compile_, True),
        "compile_ruleset (gc off)": (compile_, False),
    }
    samples = rounds_of(contenders, rounds)

    # A full collection with and without the compiled ruleset alive.
    pauses_with, pauses_without = [], []
    ruleset = compile_()
    for _ in range(rounds):
        started = CLOCK()
        gc.collect()
        pauses_with.append(CLOCK() - started)
    del ruleset
    for _ in range(rounds):
        started = CLOCK()
        gc.collect()
        pauses_without.append(CLOCK() - started)
    samples["gc.collect() with the ruleset in memory"] = pauses_with
    samples["gc.collect() without it"] = pauses_without

    # Incremental: one flag, one segment (with every flag that uses it), against the full compile.
    compiled = compile_()
    changed_flag = {**flags[count // 2], "version": 2}
    changed_segment = {**segments[0], "version": 2}
    users_of_segment = sum(1 for flag in compiled.flags.values() if segments[0]["key"] in flag.segment_keys)
    samples["recompile: one flag written"] = [
        sample(lambda: recompile(compiled, version="2", flags=[changed_flag]), gc_on=False)
        for _ in range(rounds)
    ]
    samples[f"recompile: one segment written ({users_of_segment} flags use it)"] = [
        sample(lambda: recompile(compiled, version="2", segments=[changed_segment]), gc_on=False)
        for _ in range(rounds)
    ]
    who = validate_user({"id": "user-42", "attributes": {"country": "NL", "plan": "pro", "age": 31}})
    samples["evaluate_many: every flag for one user"] = [
        sample(lambda: evaluate_many(compiled, who), gc_on=True) for _ in range(rounds)
    ]

    # Memory held by a compiled ruleset: traced allocations that survive a full collection.
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    held = compile_()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held, started
    memory = {
        "bytes": current,
        "peak_bytes": peak,
        "mb_per_1000_flags": current / count * 1000 / 2**20,
        "peak_mb_per_1000_flags": peak / count * 1000 / 2**20,
    }
    return {"flags": count, "segments": len(segments), "samples_s": samples, "memory": memory}


def server_part(count: int, rounds: int, directory: Path) -> dict[str, Any]:
    from _server import base_env, prepare_database

    database = prepare_database(directory)
    os.environ.update(base_env(database.url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "flagsvc.settings"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import transaction
    from flagsvc_sdk.engine import validate_flag, validate_segment

    from evaluation.cache import build_ruleset
    from flags.mappers import flag_to_engine
    from flags.models import Flag
    from flags.selectors import live_flags_for_evaluation
    from segments.models import Segment
    from tenancy.models import Tenant
    from tenancy.scoping import tenant_scope

    tenant = Tenant.objects.get(slug=TENANT)
    segments = mixed_segments()
    segment_keys = [segment["key"] for segment in segments]
    with tenant_scope(tenant), transaction.atomic():
        rows = []
        for doc in segments:
            segment = Segment(tenant=tenant)
            segment.apply_content(validate_segment(doc))
            rows.append(segment)
        Segment.objects.bulk_create(rows)
        rows = []
        for doc in mixed_flags(count, segment_keys):
            flag = Flag(tenant=tenant)
            flag.apply_content(validate_flag(doc, segment_keys=segment_keys))
            rows.append(flag)
        Flag.objects.bulk_create(rows, batch_size=500)

    db_path = database.url.removeprefix("sqlite:///")
    json_columns = [field.column for field in Flag._meta.fields if field.get_internal_type() == "JSONField"]
    table_name = Flag._meta.db_table

    def raw_fetch() -> Any:
        connection = sqlite3.connect(db_path)
        try:
            cursor = connection.execute(
                f"SELECT * FROM {table_name} WHERE tenant_id = ? AND archived_at IS NULL ORDER BY key",
                (tenant.pk,),
            )
            names = [column[0] for column in cursor.description]
            decoded = []
            for row in cursor.fetchall():
                record = dict(zip(names, row, strict=True))
                for column in json_columns:
                    if record[column] is not None:
                        record[column] = json.loads(record[column])
                decoded.append(record)
            return decoded
        finally:
            connection.close()

    def orm_load() -> Any:
        return [flag_to_engine(flag) for flag in live_flags_for_evaluation(tenant=tenant)]

    contenders = {
        "baseline: raw sqlite3 fetch + json.loads": (raw_fetch, True),
        "ORM load + flag_to_engine": (orm_load, True),
        "build_ruleset (load + compile)": (lambda: build_ruleset(tenant, 1), True),
    }
    samples = rounds_of(contenders, rounds)
    return {"samples_s": samples, "incremental": incremental_part(tenant, rounds)}


def incremental_part(tenant: Any, rounds: int) -> dict[str, list[float]]:
    """CPU seconds: a write through the services, what another process spends applying it, and the
    old way (a full compile) in the same run. Each process here is a `RulesetCache` of its own."""
    import time

    from django.conf import settings

    from evaluation import snapshot
    from evaluation.cache import RULESETS, RulesetCache, build_ruleset
    from evaluation.services import evaluate_bulk
    from evaluation.snapshot_keys import serving_keyring
    from flags.selectors import flag_queryset
    from flags.services import flag_update
    from segments.selectors import segment_queryset
    from segments.services import segment_update

    settings.RULESET_CHECK_INTERVAL = 0
    keys = list(flag_queryset(tenant=tenant).values_list("key", flat=True))
    segment_key = segment_queryset(tenant=tenant).values_list("key", flat=True).first()
    other = RulesetCache()
    other.get(tenant)
    RULESETS.get(tenant)

    def cpu(fn: Callable[[], Any]) -> float:
        started = time.process_time()
        fn()
        return time.process_time() - started

    out: dict[str, list[float]] = {
        "baseline: the old way, a full build_ruleset in each other process": [],
        "write: flag_update (ruleset check under the lock, audit, event)": [],
        "writer's process: catch up, and keep the last known ruleset": [],
        "another process: apply one flag write": [],
        "write: segment_update": [],
        "another process: apply one segment write": [],
        "evaluate_bulk: every flag for one user (server)": [],
        "snapshot, baseline: read the documents, serialise all, sign": [],
        "snapshot: from the compiled ruleset, no texts held, sign": [],
        "snapshot: after one flag write, texts reused, sign": [],
    }
    keyring = serving_keyring()
    held = snapshot.build_snapshot(tenant, keyring)[0].texts

    def snapshot_from_documents() -> Any:
        """The build before texts (2026-12-01, session 4): the compiled path switched off."""
        from_compiled = snapshot._from_compiled
        snapshot._from_compiled = lambda *args: None  # type: ignore[assignment]
        try:
            return snapshot.build_snapshot(tenant, keyring)
        finally:
            snapshot._from_compiled = from_compiled  # type: ignore[assignment]

    for round_ in range(rounds):
        key = keys[(round_ * 997) % len(keys)]
        current = flag_queryset(tenant=tenant).values_list("state", flat=True).get(key=key)
        state = "off" if current == "on" else "on"  # a real change every round, never a no-op
        out["write: flag_update (ruleset check under the lock, audit, event)"].append(
            cpu(
                lambda key=key, state=state: flag_update(
                    tenant=tenant, key=key, data={"state": state}, partial=True
                )
            )
        )
        out["writer's process: catch up, and keep the last known ruleset"].append(
            cpu(lambda: RULESETS.get(tenant))
        )
        out["another process: apply one flag write"].append(cpu(lambda: other.get(tenant)))
        built: list[Any] = []
        out["snapshot: after one flag write, texts reused, sign"].append(
            cpu(
                lambda built=built, held=held: built.append(snapshot.build_snapshot(tenant, keyring, held)[0])
            )
        )
        held = built[0].texts
        out["snapshot: from the compiled ruleset, no texts held, sign"].append(
            cpu(lambda: snapshot.build_snapshot(tenant, keyring))
        )
        out["snapshot, baseline: read the documents, serialise all, sign"].append(
            cpu(snapshot_from_documents)
        )
        included = [f"user-{round_}"]
        out["write: segment_update"].append(
            cpu(
                lambda included=included: segment_update(
                    tenant=tenant, key=segment_key, data={"included": included}, partial=True
                )
            )
        )
        RULESETS.get(tenant)
        out["another process: apply one segment write"].append(cpu(lambda: other.get(tenant)))
        held = snapshot.build_snapshot(tenant, keyring, held)[0].texts  # the next round starts from here
        version = tenant.__class__.objects.get(pk=tenant.pk).ruleset_version
        out["baseline: the old way, a full build_ruleset in each other process"].append(
            cpu(lambda version=version: build_ruleset(tenant, version))
        )
        user = {"id": f"user-{round_}", "attributes": {"country": "NL", "plan": "pro"}}
        out["evaluate_bulk: every flag for one user (server)"].append(
            cpu(lambda user=user: evaluate_bulk(tenant=tenant, user=user))
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=10_000, help="flags in the tenant (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians reported (5)")
    parser.add_argument("--no-server", action="store_true", help="engine only")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args()

    out: dict[str, Any] = {
        "benchmark": "compile",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "shapes": shape_names(),
    }
    out["engine"] = engine_part(args.flags, args.rounds)
    if not args.no_server:
        directory = Path(tempfile.mkdtemp(prefix="flagsvc-bench-compile-"))
        try:
            out["server"] = server_part(args.flags, args.rounds, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    print(header(f"Compile: a tenant with {args.flags:,} flags"))
    print(f"shapes, in turn: {', '.join(out['shapes'])}; 20 segments; median of {args.rounds} rounds")
    for part, baseline in (
        ("engine", "baseline: json.loads of the documents"),
        ("server", "baseline: raw sqlite3 fetch + json.loads"),
    ):
        if part not in out:
            continue
        samples = out[part]["samples_s"]
        base = median(samples[baseline])
        rows = []
        for name, values in samples.items():
            mid = median(values)
            ratio = f"{mid / base:.1f}x" if not name.startswith("gc.collect") else ""
            rows.append([name, f"{mid * 1000:,.0f}", spread(values), f"{mid / args.flags * 1e6:,.1f}", ratio])
        out[f"{part}_ms"] = {name: median(values) * 1000 for name, values in samples.items()}
        print()
        print(f"{part}:")
        print()
        print(table(["step", "ms (median)", "spread", "µs per flag", "x baseline"], rows))
    memory = out["engine"]["memory"]
    print()
    print(
        f"memory: a compiled ruleset holds {memory['mb_per_1000_flags']:.1f} MB per 1,000 flags "
        f"(peak while compiling {memory['peak_mb_per_1000_flags']:.1f} MB per 1,000; tracemalloc)"
    )
    if "server" in out:
        incremental = out["server"]["incremental"]
        base = median(incremental["baseline: the old way, a full build_ruleset in each other process"])
        rows = [
            [name, f"{median(values) * 1000:,.1f}", spread(values), f"{median(values) / base:.3f}x"]
            for name, values in incremental.items()
        ]
        out["incremental_cpu_ms"] = {name: median(values) * 1000 for name, values in incremental.items()}
        print()
        print("server, incremental (CPU ms, time.process_time):")
        print()
        print(table(["step", "CPU ms (median)", "spread", "x full compile"], rows))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
