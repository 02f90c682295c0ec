"""Bulk: ``evaluate_many`` of 100 flags for one user, in the engine and over HTTP.

Engine: 100 flags of eight shapes (``_workloads.mixed_flags``) and 20 segments; each call is a
different user. Against, in the same run: 100 separate ``evaluate()`` calls for the same user (what a
caller would do without ``evaluate_many``) and the floor of 100 x (one mmh3 hash + one dict lookup).

HTTP (unless ``--no-http``): the same flags created through the API of a real server on a
throwaway SQLite database, then ``POST /v1/evaluate/bulk`` (all 100 flags) against
``POST /v1/evaluate`` (one flag): in-process through the WSGI application (µs per request), and
under gunicorn with wrk at 16 connections (requests/s, p50, p99).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    autorange,
    header,
    interleaved,
    machine,
    median,
    spread,
    table,
    timed,
    write_json,
)
from _workloads import TENANT, make_users, mixed_flags, mixed_segments

FLAGS = 100


def engine_part(users_count: int, rounds: int, min_time: float) -> dict[str, Any]:
    import mmh3
    from flagsvc_sdk.engine import compile_ruleset, evaluate, evaluate_many

    segments = mixed_segments()
    docs = mixed_flags(FLAGS, [segment["key"] for segment in segments])
    ruleset = compile_ruleset(
        tenant=TENANT,
        version="1",
        flags=[{**doc, "version": 1} for doc in docs],
        segments=segments,
    )
    keys = [doc["key"] for doc in docs]
    users = make_users(users_count)
    ids = [user["id"] for user in users]

    def many_all(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                evaluate_many(ruleset, user)

    def many_keys(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                evaluate_many(ruleset, user, keys)

    def many_to_dict(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                {key: result.to_dict() for key, result in evaluate_many(ruleset, user).items()}

    def singles(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                {key: evaluate(ruleset, key, user) for key in keys}

    def floor(loops: int) -> None:
        hash_ = mmh3.hash
        flags = ruleset.flags
        for _ in range(loops):
            for uid in ids:
                for key in keys:
                    flags[key]
                    hash_(f"acme:{key}:{uid}", 0, False)

    contenders = {
        "floor: 100 x (mmh3 + dict lookup)": timed(floor),
        "baseline: 100 x evaluate()": timed(singles),
        "evaluate_many(ruleset, user)": timed(many_all),
        "evaluate_many(ruleset, user, 100 keys)": timed(many_keys),
        "evaluate_many + to_dict() each (server work)": timed(many_to_dict),
    }
    sized = {}
    for name, run in contenders.items():
        run(1)
        sized[name] = (run, autorange(run, min_time))
    samples = interleaved(sized, rounds, dict.fromkeys(contenders, len(users)))
    return {"users": len(users), "samples_us": {k: [v * 1e6 for v in vs] for k, vs in samples.items()}}


def http_part(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    import _inprocess
    from _server import (
        api_headers,
        base_env,
        create,
        prepare_database,
        run_wrk,
        servers_running,
        start_server,
        token,
        wait_ready,
        wrk_available,
        wrk_script,
    )

    database = prepare_database(directory)
    segments = mixed_segments()
    docs = mixed_flags(FLAGS, [segment["key"] for segment in segments])
    server = start_server("bulk", "flagsvc.wsgi", database, workers=args.workers, threads=args.threads)
    out: dict[str, Any] = {"workers": args.workers, "threads": args.threads}
    with servers_running([server]):
        wait_ready(server)
        access_token = token(server, database)
        for segment in segments:
            create(server, access_token, "/v1/segments", segment)
        for doc in docs:
            create(server, access_token, "/v1/flags", doc)
        headers = api_headers(access_token)
        bulk_body = (
            '{"user":{"id":"u-{n}","attributes":'
            + json.dumps(make_users(1)[0]["attributes"], separators=(",", ":"))
            + "}}"
        )
        single_body = (
            '{"flag_key":"' + docs[0]["key"] + '","user":{"id":"u-{n}","attributes":{"country":"DE"}}}'
        )
        if wrk_available():
            scripts = {
                "bulk (100 flags)": wrk_script(directory, "bulk", "/v1/evaluate/bulk", headers, bulk_body),
                "single flag": wrk_script(directory, "single", "/v1/evaluate", headers, single_body),
            }
            for script in scripts.values():
                run_wrk(server, script, 16, 2)  # warm-up
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scripts}
            for _ in range(args.rounds):
                for name, script in scripts.items():
                    result = run_wrk(server, script, 16, args.duration)
                    if result["errors"]:
                        raise RuntimeError(f"wrk {name}: {result}; see {server.log}")
                    runs[name].append(result)
            out["wrk_16"] = {
                name: {
                    "rps": median(r["rps"] for r in results),
                    "p50_ms": median(r["p50_us"] for r in results) / 1000,
                    "p99_ms": median(r["p99_us"] for r in results) / 1000,
                }
                for name, results in runs.items()
            }
    env = base_env(database.url, BENCH_HEADERS=json.dumps(headers))
    variants = [
        _inprocess.Variant(
            "bulk (100 flags)", "flagsvc", {"BENCH_PATH": "/v1/evaluate/bulk", "BENCH_BODY": bulk_body}
        ),
        _inprocess.Variant(
            "single flag", "flagsvc", {"BENCH_PATH": "/v1/evaluate", "BENCH_BODY": single_body}
        ),
    ]
    samples = _inprocess.measure(
        variants, env, directory, requests_per_sample=args.inprocess_requests, rounds=args.rounds
    )
    out["inprocess_samples_us"] = samples
    out["inprocess_us"] = _inprocess.medians(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000, help="distinct users (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians reported (5)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample (0.2)")
    parser.add_argument("--no-http", action="store_true", help="engine only")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (2)")
    parser.add_argument("--threads", type=int, default=2, help="GUNICORN_THREADS (2)")
    parser.add_argument("--duration", type=float, default=3, help="seconds per wrk run (3)")
    parser.add_argument("--inprocess-requests", type=int, default=300, help="per sample (300)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args()

    out: dict[str, Any] = {
        "benchmark": "bulk",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "engine": engine_part(args.users, args.rounds, args.min_time),
    }
    if not args.no_http:
        directory = Path(tempfile.mkdtemp(prefix="flagsvc-bench-bulk-"))
        try:
            out["http"] = http_part(args, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    print(header(f"Bulk: {FLAGS} flags for one user"))
    samples = out["engine"]["samples_us"]
    medians = {name: median(values) for name, values in samples.items()}
    out["engine_us"] = medians
    floor = medians["floor: 100 x (mmh3 + dict lookup)"]
    singles = medians["baseline: 100 x evaluate()"]
    rows = [
        [
            name,
            f"{value:,.1f}",
            spread(samples[name]),
            f"{value / FLAGS * 1000:,.0f}",
            f"{value / singles:.2f}x",
            f"{value / floor:.1f}x",
        ]
        for name, value in medians.items()
    ]
    print(f"engine, {out['engine']['users']:,} distinct users, median of {args.rounds} rounds:")
    print()
    print(
        table(
            ["per call", "µs (median)", "spread", "ns per flag", "x 100 evaluate()", "x floor"],
            rows,
        )
    )
    http = out.get("http")
    if http:
        inproc = http["inprocess_us"]
        print()
        print(
            f"HTTP (gunicorn {http['workers']} workers x {http['threads']} threads; in-process = "
            "through the WSGI app, no network):"
        )
        print()
        rows = []
        for name in ("bulk (100 flags)", "single flag"):
            point = http.get("wrk_16", {}).get(name)
            rows.append(
                [
                    name,
                    f"{inproc[name]:,.0f}",
                    "" if point is None else f"{point['rps']:,.0f}",
                    "" if point is None else f"{point['p50_ms']:.2f} / {point['p99_ms']:.2f}",
                ]
            )
        print(table(["request", "in-process µs", "req/s @16", "p50 / p99 ms @16"], rows))
        per_flag = (inproc["bulk (100 flags)"] - inproc["single flag"]) / (FLAGS - 1)
        print(f"\neach extra flag in a bulk request costs {per_flag:.1f} µs in-process")
        out["http_extra_flag_us"] = per_flag
    write_json(args.json, out)


if __name__ == "__main__":
    main()
