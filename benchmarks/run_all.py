"""Run every benchmark (``make bench``) and print one table of the headline numbers.

Each script runs in its own process and prints its own detailed tables as it goes; this script then
collects their JSON results and prints the summary with the targets of issue 4, item 7. ``--quick``
shrinks every run for a smoke test (its numbers are not worth recording). ``--only`` picks some.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, MAIN_PYTHON, REPO, header, machine, table

SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (script, arguments, --quick arguments)
    "engine": ("bench_engine.py", [], ["--users", "20000", "--rounds", "5", "--min-time", "0.05"]),
    "http": (
        "bench_http.py",
        [],
        ["--duration", "1", "--layer-duration", "1", "--inprocess-requests", "200"],
    ),
    "bulk": ("bench_bulk.py", [], ["--users", "300", "--duration", "1", "--min-time", "0.05"]),
    "compile": ("bench_compile.py", [], ["--flags", "1000"]),
}


def run(name: str, quick: bool, directory: Path) -> dict[str, Any] | None:
    script, arguments, quick_arguments = SCRIPTS[name]
    target = directory / f"{name}.json"
    command = [
        str(MAIN_PYTHON if MAIN_PYTHON.exists() else sys.executable),
        str(BENCH_DIR / script),
        *arguments,
        *(quick_arguments if quick else []),
        "--json",
        str(target),
    ]
    print(f"\n$ {' '.join(command)}\n", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, check=False)
    print(f"\n({name}: {time.monotonic() - started:.0f} s)", flush=True)
    if done.returncode != 0 or not target.exists():
        print(f"{name} FAILED (exit {done.returncode})", file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(target.read_text())
    return data


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary_rows(results: dict[str, dict[str, Any] | None]) -> list[list[str]]:
    rows: list[list[str]] = []
    engine = results.get("engine")
    if engine:
        ns = engine["ns_per_eval"]
        floor = ns["floor (mmh3 + dict lookup)"]
        for key, limit in (("simple", 1.5), ("complex", 3.0)):
            value = ns[f"engine {key}"]
            rows.append(
                [
                    f"engine: evaluate() {key} flag",
                    f"{value:,.0f} ns",
                    f"floor {floor:,.0f} ns",
                    f"{value / floor:.2f}x",
                    f"≤ {limit}x floor",
                    met(value / floor <= limit),
                ]
            )
        for key in ("simple", "complex"):
            theirs = ns.get(f"growthbook {key}")
            if theirs:
                speedup = theirs / ns[f"engine {key}"]
                rows.append(
                    [
                        f"engine vs GrowthBook, {key}",
                        f"{ns[f'engine {key}']:,.0f} ns",
                        f"GrowthBook {theirs:,.0f} ns",
                        f"{speedup:.1f}x faster",
                        "≥ 20x faster",
                        met(speedup >= 20),
                    ]
                )
    http = results.get("http")
    if http:
        points = http["http"]
        for c in (1, 16, 64):
            full = points.get(f"full (flagsvc.wsgi) @{c}")
            bare = points.get(f"bare view @{c}")
            if not full or not bare:
                continue
            ratio = full["rps"] / bare["rps"]
            rows.append(
                [
                    f"HTTP /v1/evaluate req/s, {c} conn",
                    f"{full['rps']:,.0f} req/s",
                    f"bare view {bare['rps']:,.0f} req/s",
                    f"{ratio:.2f}x",
                    "≥ 0.8x bare",
                    met(ratio >= 0.8),
                ]
            )
            rows.append(
                [
                    f"HTTP /v1/evaluate p50 / p99, {c} conn",
                    f"{full['p50_ms']:.2f} / {full['p99_ms']:.2f} ms",
                    f"bare {bare['p50_ms']:.2f} / {bare['p99_ms']:.2f} ms",
                    f"{full['p99_ms'] / bare['p99_ms']:.2f}x (p99)",
                    "p99 ≤ 10 ms" if c == 16 else "",
                    met(full["p99_ms"] <= 10) if c == 16 else "",
                ]
            )
        inproc = http.get("inprocess_us")
        if inproc:
            rows.append(
                [
                    "in-process µs per /v1/evaluate",
                    f"{inproc['full (flagsvc.wsgi)']:,.0f} µs",
                    f"bare view {inproc['bare view']:,.0f} µs",
                    f"{inproc['full (flagsvc.wsgi)'] / inproc['bare view']:.1f}x",
                    "",
                    "",
                ]
            )
    bulk = results.get("bulk")
    if bulk:
        us = bulk["engine_us"]
        singles = us["baseline: 100 x evaluate()"]
        many = us["evaluate_many(ruleset, user)"]
        rows.append(
            [
                "engine: evaluate_many, 100 flags",
                f"{many:,.0f} µs",
                f"100 x evaluate() {singles:,.0f} µs",
                f"{many / singles:.2f}x",
                "",
                "",
            ]
        )
        http_bulk = bulk.get("http")
        if http_bulk:
            inproc = http_bulk["inprocess_us"]
            rows.append(
                [
                    "in-process µs per /v1/evaluate/bulk (100)",
                    f"{inproc['bulk (100 flags)']:,.0f} µs",
                    f"single flag {inproc['single flag']:,.0f} µs",
                    f"{inproc['bulk (100 flags)'] / inproc['single flag']:.1f}x",
                    "",
                    "",
                ]
            )
            wrk = http_bulk.get("wrk_16", {}).get("bulk (100 flags)")
            if wrk:
                rows.append(
                    [
                        "HTTP /v1/evaluate/bulk (100), 16 conn",
                        f"{wrk['rps']:,.0f} req/s",
                        f"p50 / p99 {wrk['p50_ms']:.1f} / {wrk['p99_ms']:.1f} ms",
                        "",
                        "",
                        "",
                    ]
                )
    compile_ = results.get("compile")
    if compile_:
        engine_ms = compile_["engine_ms"]
        flags = compile_["engine"]["flags"]
        base = engine_ms["baseline: json.loads of the documents"]
        value = engine_ms["compile_ruleset (gc on, as in the server)"]
        rows.append(
            [
                f"engine: compile_ruleset, {flags:,} flags",
                f"{value:,.0f} ms",
                f"json.loads {base:,.0f} ms",
                f"{value / base:.1f}x",
                "",
                "",
            ]
        )
        rows.append(
            [
                "full GC pause with that ruleset alive",
                f"{engine_ms['gc.collect() with the ruleset in memory']:,.0f} ms",
                f"without {engine_ms['gc.collect() without it']:,.0f} ms",
                "",
                "",
                "",
            ]
        )
        server_ms = compile_.get("server_ms")
        if server_ms:
            value = server_ms["build_ruleset (load + compile)"]
            base = server_ms["baseline: raw sqlite3 fetch + json.loads"]
            rows.append(
                [
                    f"server: build_ruleset, {flags:,} flags",
                    f"{value:,.0f} ms",
                    f"raw sqlite3 fetch {base:,.0f} ms",
                    f"{value / base:.1f}x",
                    "",
                    "",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCRIPTS), help="comma separated subset")
    parser.add_argument("--quick", action="store_true", help="tiny runs: a smoke test only")
    parser.add_argument("--json", help="write every result as one JSON file here")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    start_machine = machine()
    with tempfile.TemporaryDirectory(prefix="flagsvc-bench-") as tmp:
        results = {name: run(name, args.quick, Path(tmp)) for name in names}
    print("\n" + header("Summary" + (" (--quick: not for the record)" if args.quick else "")))
    print(f"load average at start: {start_machine['loadavg']}; total {time.monotonic() - started:.0f} s")
    print()
    print(
        table(
            ["measure", "value (median)", "baseline (same run)", "ratio", "target", "verdict"],
            summary_rows(results),
        )
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if any(result is None for result in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
