"""What usage counting costs (issue 15, item 1: "costs at most 3 % of evaluate's CPU").

Two gunicorn servers of the real service (``flagsvc.wsgi``, DEBUG=0) on one throwaway SQLite database,
identical but for ``USAGE_COUNTING`` (1: every evaluation counted in memory and flushed every
``USAGE_FLUSH_SECONDS``; 0: not counted), are driven by ``wrk`` with ``POST /v1/evaluate`` (each request
a different user), alternating ON, OFF, ON, OFF, ... for ``--rounds`` rounds. The figure is the servers'
CPU per request (user + system of the gunicorn master and workers, from ``/proc/<pid>/stat``, the
flushing thread included), the median of the rounds for each, and their ratio. The same comparison is
also made without the network, in-process through the WSGI application (``_inprocess.py``), where the
noise is smaller.

    .venv/bin/python benchmarks/bench_usage_cost.py [--rounds 7] [--duration 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _inprocess
from _common import BENCH_DIR, MAIN_PYTHON, REPO, header, machine, median, spread, table, verdict, write_json
from _server import (
    api_headers,
    base_env,
    create,
    prepare_database,
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

TARGET = 0.03
EVALUATE_BODY = '{"flag_key":"simple","user":{"id":"u-{n}","attributes":{"country":"DE","plan":"pro"}}}'
VARIANTS = {"counting ON": {"USAGE_COUNTING": "1"}, "counting OFF": {"USAGE_COUNTING": "0"}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of wrk per sample")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inprocess-requests", type=int, default=3000)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument(
        "--callgrind",
        type=int,
        default=0,
        metavar="N",
        help="also count instructions per request with valgrind (N and 3N requests per variant; slow)",
    )
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as tmp:
        out = run(args, Path(tmp))
    write_json(args.json, out)


def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    database = prepare_database(directory)
    setup = start_server("setup", "flagsvc.wsgi", database, workers=1, threads=1)
    try:
        wait_ready(setup)
        access_token = token(setup, database)
        create(setup, access_token, "/v1/flags", SIMPLE_FLAG)
    finally:
        stop_server(setup)
    out: dict[str, Any] = {
        "benchmark": "usage_cost",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "workers": args.workers,
        "threads": args.threads,
        "connections": args.connections,
    }
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    if not args.no_http and wrk_available():
        script = wrk_script(directory, "evaluate", "/v1/evaluate", api_headers(access_token), EVALUATE_BODY)
        started = [
            start_server(
                name.replace(" ", "_"),
                "flagsvc.wsgi",
                database,
                workers=args.workers,
                threads=args.threads,
                extra_env=env,
            )
            for name, env in VARIANTS.items()
        ]
        with servers_running(started) as servers:
            for server, name in zip(servers, VARIANTS, strict=True):
                server.name = name
                wait_ready(server)
                run_wrk(server, script, args.connections, 2)  # warm-up: rulesets compiled, DB open
            for _ in range(args.rounds):
                for server in servers:
                    before = server_cpu_seconds(server)
                    result = run_wrk(server, script, args.connections, args.duration)
                    if result["errors"]:
                        raise RuntimeError(f"{server.name}: {result}; see {server.log}")
                    used = server_cpu_seconds(server) - before
                    samples[server.name].append(used / result["requests"] * 1e6)
        out["http_server_cpu_us"] = samples
    env = base_env(
        database.url,
        BENCH_PATH="/v1/evaluate",
        BENCH_BODY=EVALUATE_BODY,
        BENCH_HEADERS=json.dumps(api_headers(access_token)),
    )
    out["inprocess_cpu_us"] = _inprocess.measure(
        [_inprocess.Variant(name, "flagsvc", env_) for name, env_ in VARIANTS.items()],
        env,
        directory,
        requests_per_sample=args.inprocess_requests,
        rounds=args.rounds,
    )
    if args.callgrind:
        out["callgrind_instructions_per_request"] = instructions_per_request(
            {name: {**env, **env_} for name, env_ in VARIANTS.items()}, directory, args.callgrind
        )
    report(out)
    return out


def instructions_per_request(
    variants: dict[str, dict[str, str]], directory: Path, requests: int
) -> dict[str, float]:
    """Instructions per evaluate request of each variant, load-independent: callgrind counts a worker
    that serves `requests` and one that serves 3x as many; the difference over 2x `requests` leaves out
    the start-up. The four runs go at once (counts do not depend on the load). The flushing thread runs
    on its wall-clock interval, so under valgrind's slowdown it flushes once per far fewer requests
    than at full speed: its share here is an upper bound."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install -y valgrind)")
    runs: dict[tuple[str, int], tuple[Path, subprocess.Popen[str]]] = {}
    for name, env in variants.items():
        slug = name.replace(" ", "_")
        for count in (requests, 3 * requests):
            target = directory / f"callgrind-{slug}-{count}.out"
            worker_env = {
                **env,
                "BENCH_APP": "flagsvc",
                "BENCH_LOG": str(directory / f"callgrind-{slug}-{count}.log"),
                "PYTHONPATH": f"{REPO}{os.pathsep}{BENCH_DIR}",
            }
            process = subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={target}",
                    str(MAIN_PYTHON),
                    str(BENCH_DIR / "_inprocess.py"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=REPO,
                env=worker_env,
            )
            assert process.stdin is not None
            process.stdin.write(f"{count}\n")
            process.stdin.close()
            runs[(name, count)] = (target, process)
    totals: dict[tuple[str, int], int] = {}
    for key, (target, process) in runs.items():
        if process.wait() != 0:
            raise RuntimeError(f"valgrind run {key} failed")
        match = re.search(r"^(?:summary|totals): (\d+)", target.read_text(), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no instruction total in {target}")
        totals[key] = int(match.group(1))
    return {
        name: (totals[(name, 3 * requests)] - totals[(name, requests)]) / (2 * requests) for name in variants
    }


def report(out: dict[str, Any]) -> None:
    print(header("Usage counting: CPU per POST /v1/evaluate with counting ON vs OFF"))
    rows = []
    for label, key in (("HTTP, server CPU (gunicorn /proc)", "http_server_cpu_us"),
                       ("in-process, WSGI app CPU", "inprocess_cpu_us")):  # fmt: skip
        samples = out.get(key)
        if not samples or not samples["counting ON"]:
            continue
        on, off = median(samples["counting ON"]), median(samples["counting OFF"])
        # Paired rounds: each ON sample against the OFF sample taken right after it.
        paired = median(
            a / b - 1 for a, b in zip(samples["counting ON"], samples["counting OFF"], strict=True)
        )
        out.setdefault("summary", {})[key] = {
            "on_us": on,
            "off_us": off,
            "cost": on / off - 1,
            "paired": paired,
        }
        rows.append(
            [
                label,
                f"{on:,.1f} ({spread(samples['counting ON'])})",
                f"{off:,.1f} ({spread(samples['counting OFF'])})",
                f"{(on / off - 1) * 100:+.1f}%",
                f"{paired * 100:+.1f}%",
                verdict(on / off - 1 <= TARGET),
            ]
        )
    instructions = out.get("callgrind_instructions_per_request")
    if instructions:
        on, off = instructions["counting ON"], instructions["counting OFF"]
        out.setdefault("summary", {})["callgrind"] = {"on": on, "off": off, "cost": on / off - 1}
        rows.append(
            [
                "in-process, instructions (callgrind)",
                f"{on:,.0f} instr",
                f"{off:,.0f} instr",
                f"{(on / off - 1) * 100:+.2f}%",
                "",
                verdict(on / off - 1 <= TARGET),
            ]
        )
    print(
        f"gunicorn WEB_CONCURRENCY={out['workers']}, GUNICORN_THREADS={out['threads']}, "
        f"wrk 1 thread, {out['connections']} connections; median of the rounds (spread)\n"
    )
    print(
        table(
            [
                "where",
                "µs/req counting ON",
                "µs/req counting OFF",
                "cost (medians)",
                "cost (paired)",
                "≤ 3 %",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
