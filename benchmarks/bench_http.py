"""HTTP: ``POST /v1/evaluate`` under gunicorn against a bare Django view, and the price of each layer.

What it does, all on 127.0.0.1 and a throwaway SQLite database:

1. migrate, ``create_tenant acme``, ``create_api_client``, then through the API a token and the
   simple reference flag (``_workloads.SIMPLE_FLAG``);
2. starts ``gunicorn -c gunicorn.conf.py`` for the real service (``flagsvc.wsgi``, DEBUG=0, auth,
   metrics and request logging on), for the bare view (``bare_app.py``) and for one server per
   layer variant (``settings_layers.py`` + ``BENCH_DROP``), all with the same workers and threads;
3. drives them with ``wrk`` (one thread, a Lua script for the POST body and headers; each request a
   different user id), round-robin, ``--runs`` rounds: requests/s, p50 and p99 at 1, 16 and 64
   connections for the real and the bare server, and at 16 for each variant;
4. prices every layer without the network too: microseconds per request through the WSGI
   application in-process (``_inprocess.py``), one process per variant, round-robin.

``--sweep`` instead compares worker/thread counts (``WEB_CONCURRENCY=2`` with
``GUNICORN_THREADS=1..4``, and the ``gunicorn.conf.py`` default) for the real and the bare server.
Server logs go to files in the temporary directory (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _inprocess
from _common import header, machine, median, spread, table, verdict, write_json
from _server import (
    Database,
    Server,
    api_headers,
    base_env,
    create,
    prepare_database,
    request,
    run_wrk,
    server_cpu_seconds,
    servers_running,
    start_server,
    stop_server,
    token,
    wait_ready,
    wrk_available,
    wrk_script,
)
from _workloads import SIMPLE_FLAG

DEFAULT_WORKERS = 2
DEFAULT_THREADS = 2
TARGET_RATIO = 0.8
TARGET_P99_MS = 10.0
EVALUATE_BODY = '{"flag_key":"simple","user":{"id":"u-{n}","attributes":{"country":"DE","plan":"pro"}}}'

ALL_LAYERS = "logging,metrics,auth,tenant,django_mw"
LAYER_VARIANTS: list[tuple[str, str, dict[str, str], bool]] = [
    # name, BENCH_DROP, extra environment, also measured over HTTP
    ("- request log", "logging", {}, True),
    ("- metrics (both)", "metrics", {}, True),
    ("- prometheus middleware", "prometheus_mw", {}, False),
    ("- engine metrics", "engine_metrics", {}, False),
    ("- auth (JWT + client check)", "auth", {}, True),
    ("- tenant check", "tenant", {}, True),
    ("- unused Django middleware", "django_mw", {}, True),
    ("- all five layers", ALL_LAYERS, {}, True),
    ("+ DEBUG=1 (make run)", "", {"DEBUG": "1"}, False),
]
FULL = "full (flagsvc.wsgi)"
BARE = "bare view"


def wrk_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def layer_env(drop: str, extra: dict[str, str]) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "settings_layers", "BENCH_DROP": drop, **extra}


def setup(directory: Path, workers: int, threads: int) -> tuple[Database, str]:
    """Database, token and the simple flag, created through the API of a real server."""
    database = prepare_database(directory)
    server = start_server("setup", "flagsvc.wsgi", database, workers=1, threads=1)
    try:
        wait_ready(server)
        access_token = token(server, database)
        create(server, access_token, "/v1/flags", SIMPLE_FLAG)
    finally:
        stop_server(server)
    return database, access_token


def check_answers(servers: list[Server], access_token: str) -> None:
    body = json.loads(EVALUATE_BODY.replace("{n}", "check"))
    for server in servers:
        status, data = request(server, "POST", "/v1/evaluate", body, api_headers(access_token))
        if status != 200 or not isinstance(data, dict) or "variant" not in data:
            raise RuntimeError(f"{server.name}: {status} {data}; see {server.log}")


def start_all(
    specs: list[tuple[str, str, dict[str, str]]], database: Database, workers: int, threads: int
) -> list[Server]:
    servers = [
        start_server(
            name.replace(" ", "_").replace("/", "_"),
            app,
            database,
            workers=workers,
            threads=threads,
            extra_env=env,
        )
        for name, app, env in specs
    ]
    for server, (name, _, _) in zip(servers, specs, strict=True):
        server.name = name
    for server in servers:
        wait_ready(server)
    return servers


def drive(
    points: list[tuple[Server, int, float]], script: Path, runs: int
) -> tuple[dict[tuple[str, int], list[dict[str, Any]]], float, float]:
    """wrk on every (server, connections, seconds) point, round-robin; also wrk's CPU share."""
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for server in {point[0].name: point[0] for point in points}.values():
        run_wrk(server, script, 16, 2)  # warm-up: every worker compiles its ruleset, opens the DB
    cpu_before = wrk_cpu_seconds()
    wall = 0.0
    for _ in range(runs):
        for server, connections, seconds in points:
            server_before = server_cpu_seconds(server)
            result = run_wrk(server, script, connections, seconds)
            result["server_cpu_us"] = (server_cpu_seconds(server) - server_before) / result["requests"] * 1e6
            wall += result["duration_us"] / 1e6
            if result["errors"]:
                raise RuntimeError(f"{server.name} c={connections}: {result}; see {server.log}")
            results.setdefault((server.name, connections), []).append(result)
    return results, wrk_cpu_seconds() - cpu_before, wall


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "rps": median(r["rps"] for r in runs),
        "p50_ms": median(r["p50_us"] for r in runs) / 1000,
        "p99_ms": median(r["p99_us"] for r in runs) / 1000,
        "rps_spread": spread([r["rps"] for r in runs]),  # type: ignore[dict-item]
        "server_cpu_us": median(r["server_cpu_us"] for r in runs),
    }


def run_main(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    database, access_token = setup(directory, args.workers, args.threads)
    script = wrk_script(directory, "evaluate", "/v1/evaluate", api_headers(access_token), EVALUATE_BODY)
    connections = [int(c) for c in args.connections.split(",")]
    http_variants = [v for v in LAYER_VARIANTS if v[3]] if not args.no_layers else []
    specs = [
        (BARE, "bare_app:application", {}),
        (FULL, "flagsvc.wsgi", {}),
        *[(name, "flagsvc.wsgi", layer_env(drop, extra)) for name, drop, extra, _ in http_variants],
    ]
    out: dict[str, Any] = {
        "benchmark": "http",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "workers": args.workers,
        "threads": args.threads,
        "load_generator": "wrk 4.1 (Debian), 1 thread, Lua POST script",
    }
    out["http"] = {}
    if not args.no_http:
        with servers_running(start_all(specs, database, args.workers, args.threads)) as servers:
            check_answers(servers, access_token)
            by_name = {server.name: server for server in servers}
            points = []
            for c in connections:
                points += [(by_name[BARE], c, args.duration), (by_name[FULL], c, args.duration)]
            points += [(by_name[name], 16, args.layer_duration) for name, *_ in http_variants]
            results, wrk_cpu, wrk_wall = drive(points, script, args.runs)
        out["wrk_cpu_share_of_one_core"] = wrk_cpu / wrk_wall
        out["http"] = {f"{name} @{c}": summary(runs) for (name, c), runs in results.items()}
        out["http_raw"] = {f"{name} @{c}": runs for (name, c), runs in results.items()}

    if not args.no_inprocess:
        variants = [
            _inprocess.Variant(BARE, "bare", {}),
            _inprocess.Variant(FULL, "flagsvc", {}),
            *[
                _inprocess.Variant(name, "flagsvc", layer_env(drop, extra))
                for name, drop, extra, _ in ([] if args.no_layers else LAYER_VARIANTS)
            ],
        ]
        env = base_env(
            database.url,
            BENCH_PATH="/v1/evaluate",
            BENCH_BODY=EVALUATE_BODY,
            BENCH_HEADERS=json.dumps(api_headers(access_token)),
        )
        samples = _inprocess.measure(
            variants,
            env,
            directory,
            requests_per_sample=args.inprocess_requests,
            rounds=args.inprocess_rounds,
        )
        out["inprocess_us"] = _inprocess.medians(samples)
        out["inprocess_min_us"] = {name: min(values) for name, values in samples.items()}
        out["inprocess_samples_us"] = samples
        out["micro_us"] = _inprocess.micro(
            _inprocess.Variant(FULL, "flagsvc", {}), env, directory, args.inprocess_rounds
        )
        if args.profile:
            drop = args.profile_drop
            out["profile"] = _inprocess.profile(
                _inprocess.Variant(
                    f"{FULL} - {drop}" if drop else FULL, "flagsvc", layer_env(drop, {}) if drop else {}
                ),
                env,
                directory,
                args.profile,
            )
    report_main(out, connections)
    return out


def report_main(out: dict[str, Any], connections: list[int]) -> None:
    http = out["http"]
    if not http:
        report_inprocess(out)
        return
    print(header("HTTP: POST /v1/evaluate vs a bare Django view"))
    print(
        f"gunicorn -c gunicorn.conf.py, WEB_CONCURRENCY={out['workers']}, "
        f"GUNICORN_THREADS={out['threads']}; {out['load_generator']}; "
        f"wrk used {out['wrk_cpu_share_of_one_core'] * 100:.0f}% of one core while it ran"
    )
    print()
    rows = []
    for c in connections:
        full, bare = http[f"{FULL} @{c}"], http[f"{BARE} @{c}"]
        rows.append(
            [
                c,
                f"{bare['rps']:,.0f}",
                f"{full['rps']:,.0f} ({full['rps_spread']})",
                f"{full['rps'] / bare['rps']:.2f}x",
                f"{bare['p50_ms']:.2f} / {bare['p99_ms']:.2f}",
                f"{full['p50_ms']:.2f} / {full['p99_ms']:.2f}",
                f"{bare['server_cpu_us']:,.0f} / {full['server_cpu_us']:,.0f}",
            ]
        )
    print(
        table(
            [
                "connections",
                "bare req/s",
                "evaluate req/s",
                "evaluate ÷ bare",
                "bare p50 / p99 ms",
                "evaluate p50 / p99 ms",
                "server CPU µs/req bare / evaluate",
            ],
            rows,
        )
    )
    full16, bare16 = http[f"{FULL} @16"], http[f"{BARE} @16"]
    targets = [
        ["req/s ≥ 0.8x bare (16 conns)", f"{full16['rps'] / bare16['rps']:.2f}x",
         verdict(full16["rps"] / bare16["rps"] >= TARGET_RATIO)],
        ["p99 ≤ 10 ms (16 conns)", f"{full16['p99_ms']:.2f} ms",
         verdict(full16["p99_ms"] <= TARGET_P99_MS)],
    ]  # fmt: skip
    out["targets"] = [{"target": t, "value": v, "met": m == "met"} for t, v, m in targets]
    print()
    print(table(["target", "measured", "verdict"], targets))

    inproc = out.get("inprocess_us", {})
    inproc_min = out.get("inprocess_min_us", {})
    if inproc or any(key.startswith("- ") for key in http):
        full_us = inproc.get(FULL)
        rows = []
        for name in [BARE, FULL, *[v[0] for v in LAYER_VARIANTS]]:
            us = inproc.get(name)
            row: list[Any] = [name]
            row.append("" if us is None else f"{us:,.0f} ({inproc_min[name]:,.0f})")
            row.append(
                ""
                if us is None or full_us is None or name == FULL
                else f"{full_us - us:+,.0f} µs ({(full_us - us) / full_us * 100:+.0f}%)"
            )
            point = http.get(f"{name} @16")
            row.append("" if point is None else f"{point['rps']:,.0f}")
            row.append("" if point is None or name in (FULL,) else f"{point['rps'] / full16['rps']:.2f}x")
            row.append("" if point is None else f"{point['p99_ms']:.2f}")
            row.append("" if point is None else f"{point['server_cpu_us']:,.0f}")
            rows.append(row)
        print()
        print("Layer costs: in-process CPU µs per request through the WSGI app (no network; median")
        print("and min of the rounds), and over HTTP at 16 connections: req/s, p99 and the server's")
        print("CPU per request (its workers' /proc times). 'saves' = full minus the variant.")
        print()
        print(
            table(
                [
                    "variant",
                    "µs/request (min)",
                    "saves",
                    "req/s @16",
                    "÷ full",
                    "p99 ms @16",
                    "server CPU µs/req @16",
                ],
                rows,
            )
        )


def report_inprocess(out: dict[str, Any]) -> None:
    """``--no-http``: the in-process prices alone (a quick loop while optimising)."""
    inproc, inproc_min = out.get("inprocess_us", {}), out.get("inprocess_min_us", {})
    print(header("In-process: CPU µs per POST /v1/evaluate through the WSGI app (no HTTP)"))
    bare = inproc[BARE]
    rows = [
        [name, f"{us:,.0f} ({inproc_min[name]:,.0f})", f"{us - bare:+,.0f}", f"{us / bare:.2f}x"]
        for name, us in inproc.items()
    ]
    print(table(["variant", "µs/request median (min)", "over bare", "÷ bare"], rows))


def run_sweep(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    database, access_token = setup(directory, 2, 1)
    script = wrk_script(directory, "evaluate", "/v1/evaluate", api_headers(access_token), EVALUATE_BODY)
    configs = [(2, 1), (2, 2), (2, 3), (2, 4), (4, 4)]
    results: dict[str, Any] = {}
    for workers, threads in configs:
        specs = [(BARE, "bare_app:application", {}), (FULL, "flagsvc.wsgi", {})]
        with servers_running(start_all(specs, database, workers, threads)) as servers:
            check_answers(servers, access_token)
            points = [(s, c, args.layer_duration) for c in (16, 64) for s in servers]
            raw, _, _ = drive(points, script, args.runs)
        for (name, c), runs in raw.items():
            results[f"{workers}x{threads} {name} @{c}"] = summary(runs)
    print(header("HTTP: gunicorn workers x threads"))
    rows = []
    for workers, threads in configs:
        for c in (16, 64):
            full = results[f"{workers}x{threads} {FULL} @{c}"]
            bare = results[f"{workers}x{threads} {BARE} @{c}"]
            rows.append(
                [
                    f"{workers} x {threads}",
                    c,
                    f"{bare['rps']:,.0f}",
                    f"{full['rps']:,.0f}",
                    f"{full['rps'] / bare['rps']:.2f}x",
                    f"{bare['p99_ms']:.2f}",
                    f"{full['p99_ms']:.2f}",
                    f"{bare['server_cpu_us']:,.0f} / {full['server_cpu_us']:,.0f}",
                ]
            )
    print(
        table(
            [
                "workers x threads",
                "conns",
                "bare req/s",
                "evaluate req/s",
                "÷ bare",
                "bare p99 ms",
                "evaluate p99 ms",
                "server CPU µs/req bare / evaluate",
            ],
            rows,
        )
    )
    return {"benchmark": "http-sweep", "machine": machine(), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="WEB_CONCURRENCY (2)")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"GUNICORN_THREADS ({DEFAULT_THREADS})"
    )
    parser.add_argument("--connections", default="1,16,64", help="wrk connections (1,16,64)")
    parser.add_argument("--duration", type=float, default=4, help="seconds per wrk run (4)")
    parser.add_argument(
        "--layer-duration", type=float, default=3, help="seconds per layer-variant wrk run (3)"
    )
    parser.add_argument("--runs", type=int, default=5, help="rounds; medians reported (5)")
    parser.add_argument("--inprocess-requests", type=int, default=300, help="per sample (300)")
    parser.add_argument("--inprocess-rounds", type=int, default=15, help="(15)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile N in-process requests"
    )
    parser.add_argument("--profile-drop", default="", help="BENCH_DROP of the profiled variant")
    parser.add_argument("--no-layers", action="store_true", help="skip the layer servers")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process prices")
    parser.add_argument(
        "--no-http", action="store_true", help="in-process prices only: no gunicorn, no wrk (quick)"
    )
    parser.add_argument("--sweep", action="store_true", help="compare workers x threads instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args()
    if not args.no_http and not wrk_available():
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    directory = Path(tempfile.mkdtemp(prefix="flagsvc-bench-http-"))
    try:
        out = run_sweep(args, directory) if args.sweep else run_main(args, directory)
    finally:
        if args.keep:
            print(f"\nlogs and database kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    if out.get("micro_us"):
        print()
        print("The pieces of the request path alone (CPU µs per call, in a loop, in a worker of the")
        print("full service; median and min of the rounds), each next to a cheaper alternative:")
        print()
        print(
            table(
                ["piece", "µs (median)", "µs (min)"],
                [
                    [name.strip(), f"{v['median_us']:,.1f}", f"{v['min_us']:,.1f}"]
                    for name, v in out["micro_us"].items()
                ],
            )
        )
    if out.get("profile"):
        print("\ncProfile of the full stack, in-process:\n")
        print(out["profile"])
    write_json(args.json, out)


if __name__ == "__main__":
    main()
