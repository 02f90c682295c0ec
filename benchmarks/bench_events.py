"""Change-event stream: subscribers held, write-to-delivery latency, and evaluation beside it (ADR 0012).

    .venv/bin/python benchmarks/bench_events.py                       # both serving models, 100 and 1,000
    .venv/bin/python benchmarks/bench_events.py --models async --subscribers 1000 --runs 3

For each serving model of `GET /v1/events` and each number of subscribers, in one run:

1. `POST /v1/evaluate` requests/s with no subscriber (wrk, 16 connections, on gunicorn: 2 workers x 2
   threads, the default config);
2. N subscribers connect to the stream server (one asyncio client in this process) and stay;
3. `--writes` flag updates through gunicorn, one at a time: for each, the time from sending the write to
   each subscriber receiving its event (p50, p99 over every (write, subscriber) pair);
4. evaluate requests/s again while the N subscribers are held and a write is made every 0.5 s (and
   the latency of those writes under load).

Models: `async` = the stream process (`python -m flagsvc.stream`: Django's ASGI app under uvicorn, one
event loop, the per-process hub); `threads` = gunicorn's gthread worker streaming from its threads
(`sync_events`: a thread and a database connection per subscriber). Everything on loopback, on a
throwaway PostgreSQL database (`--pg`), stopped and dropped at the end. Each figure is the median of
`--runs` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, REPO, machine
from _server import (
    HOST,
    Database,
    Server,
    api_headers,
    base_env,
    free_port,
    manage,
    request,
    run_wrk,
    server_cpu_seconds,
    stop_server,
    token,
    wait_ready,
    wrk_available,
    wrk_script,
)

EVALUATE_BODY = '{"flag_key": "bench", "user": {"id": "user-{n}"}}'
ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
VERSION = re.compile(rb'"version":(\d+)')
EXTRA: dict[str, str] = {}
"""Environment for every server of the run (Redis)."""


def prepare(directory: Path, pg: str) -> tuple[Database, str]:
    name = f"flagsvc_bench_events_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = base_env(url)
    log = directory / "setup.log"
    manage(env, "migrate", "--noinput", log=log)
    manage(env, "create_tenant", "acme", log=log)
    out = manage(
        env,
        *("create_api_client", "--tenant", "acme", "--json"),
        *("--scope", "evaluate", "--scope", "flags:write", "--scope", "events:read"),
        log=log,
    )
    client = json.loads(out.strip().splitlines()[-1])
    return Database(directory, url, client["client_id"], client["client_secret"]), name


def drop(pg: str, name: str) -> None:
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def start(name: str, command: list[str], database: Database, **extra: str) -> Server:
    port = free_port()
    env = base_env(
        database.url,
        PORT=str(port),
        EVENTS_PORT=str(port),
        HOST=HOST,
        GUNICORN_BIND=f"{HOST}:{port}",
        PYTHONPATH=str(BENCH_DIR),
        **EXTRA,
        **extra,
    )
    log = database.directory / f"{name}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, process, log, env)


GUNICORN = [str(REPO / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "flagsvc.wsgi"]
UVICORN = [str(REPO / ".venv" / "bin" / "python"), "-m", "flagsvc.stream"]


def stream_server(model: str, database: Database, subscribers: int) -> Server:
    if model == "async":
        return start("stream-async", UVICORN, database)
    # A thread per subscriber: one worker with as many threads (and connections) as subscribers.
    return start(
        "stream-threads",
        GUNICORN,
        database,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS=str(subscribers + 4),
        GUNICORN_WORKER_CONNECTIONS=str(subscribers + 16),
        EVENTS_STREAM_ON_WSGI="1",
    )


# --- subscribers ------------------------------------------------------------------------------------


class Subscribers:
    """N SSE connections on one asyncio loop in a thread of this process; records arrival times."""

    def __init__(self, port: int, headers: dict[str, str], count: int) -> None:
        self.port, self.headers, self.count = port, headers, count
        self.arrivals: dict[int, list[float]] = {}  # flag version -> arrival times
        self.connected = 0
        self.failed = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop = asyncio.Event()
        for batch_start in range(0, self.count, 50):
            batch = [asyncio.create_task(self._subscribe()) for _ in range(min(50, self.count - batch_start))]
            self.tasks += batch
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 120
        while self.connected + self.failed < self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.ready.set()
        await self.stop.wait()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _subscribe(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 60)
        except (OSError, TimeoutError):
            self.failed += 1
            return
        lines = ["GET /v1/events HTTP/1.1", f"Host: {HOST}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        counted = False
        try:
            status = await asyncio.wait_for(reader.readline(), 60)
            if b" 200 " not in status:
                self.failed += 1
                return
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b": events") and not counted:
                    counted = True
                    self.connected += 1
                elif line.startswith(b"data: {"):
                    now = time.monotonic()
                    found = VERSION.search(line)
                    if found:
                        self.arrivals.setdefault(int(found.group(1)), []).append(now)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            if not counted:
                self.failed += 1
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


def write_and_measure(
    web: Server,
    headers: dict[str, str],
    subscribers: Subscribers,
    first_version: int,
    writes: int,
    gap: float,
) -> tuple[list[float], int]:
    """`writes` updates of flag `bench`; the latency of every (write, subscriber) pair, and the misses."""
    sent: dict[int, float] = {}
    for n in range(writes):
        version = first_version + n + 1
        sent[version] = time.monotonic()
        status, data = request(web, "PATCH", "/v1/flags/bench", {"description": f"w{version}"}, headers)
        if status != 200:
            raise RuntimeError(f"write {status} {data}")
        time.sleep(gap)
    time.sleep(2.0)
    latencies: list[float] = []
    missing = 0
    for version, at in sent.items():
        arrived = subscribers.arrivals.get(version, [])
        missing += subscribers.connected - len(arrived)
        latencies += [t - at for t in arrived]
    return latencies, missing


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def flag_version(web: Server, headers: dict[str, str]) -> int:
    _, data = request(web, "GET", "/v1/flags/bench", None, headers)
    return int(data["version"])


def evaluate_while_writing(
    web: Server,
    headers: dict[str, str],
    script: Path,
    duration: float,
    subscribers: Subscribers | None,
    version: int,
) -> tuple[float, list[float], int, int]:
    """wrk on evaluate while a write is made every 0.5 s (both phases pay the same recompiles)."""
    writes = max(1, int(duration / 0.5) - 2)
    outcome: dict[str, Any] = {}

    def keep_writing() -> None:
        time.sleep(0.5)
        if subscribers is None:
            for n in range(writes):
                request(web, "PATCH", "/v1/flags/bench", {"description": f"b{version + n}"}, headers)
                time.sleep(0.5)
            outcome["latencies"], outcome["missing"] = [], 0
        else:
            outcome["latencies"], outcome["missing"] = write_and_measure(
                web, headers, subscribers, version, writes, 0.5
            )

    writer = threading.Thread(target=keep_writing)
    writer.start()
    rps = run_wrk(web, script, 16, duration)["rps"]
    writer.join(120)
    return rps, outcome.get("latencies", []), outcome.get("missing", -1), writes


def one_run(
    model: str, count: int, database: Database, web: Server, access: str, script: Path, args: Any
) -> dict[str, Any]:
    headers = api_headers(access)
    run_wrk(web, script, 16, 1)  # warm-up
    baseline, _, _, _ = evaluate_while_writing(web, headers, script, args.duration, None, 0)
    stream = stream_server(model, database, count)
    try:
        wait_ready(stream, path="/healthz")
        connecting = time.monotonic()
        subscribers = Subscribers(stream.port, headers, count)
        subscribers.ready.wait(180)
        connect_seconds = time.monotonic() - connecting
        held = subscribers.connected
        version = flag_version(web, headers)
        quiet, quiet_missing = write_and_measure(web, headers, subscribers, version, args.writes, 0.3)
        version = flag_version(web, headers)
        cpu_before, wall_before = server_cpu_seconds(stream), time.monotonic()
        loaded, loaded_latencies, loaded_missing, _ = evaluate_while_writing(
            web, headers, script, args.duration, subscribers, version
        )
        stream_cpu = (server_cpu_seconds(stream) - cpu_before) / (time.monotonic() - wall_before)
        stream_rss_mb = rss_mb(stream)
        subscribers.close()
    finally:
        stop_server(stream)
    return {
        "model": model,
        "subscribers": count,
        "held": held,
        "connect_seconds": connect_seconds,
        "stream_rss_mb": stream_rss_mb,
        "stream_cpu_share": stream_cpu,
        "evaluate_rps_without": baseline,
        "evaluate_rps_with": loaded,
        "ratio": loaded / baseline,
        "p50_ms": percentile(quiet, 0.5) * 1000,
        "p99_ms": percentile(quiet, 0.99) * 1000,
        "max_ms": max(quiet, default=float("nan")) * 1000,
        "missed": quiet_missing,
        "under_load_p50_ms": percentile(loaded_latencies, 0.5) * 1000,
        "under_load_p99_ms": percentile(loaded_latencies, 0.99) * 1000,
        "under_load_missed": loaded_missing,
    }


def rss_mb(server: Server) -> float:
    """Resident memory of the server's processes (master and workers), from /proc."""
    total = 0
    pids = [server.process.pid] + [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == server.process.pid
    ]
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _parent(entry: Path) -> int:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="async,threads")
    parser.add_argument("--subscribers", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--threads-max",
        type=int,
        default=100,
        help="the threads model holds a PostgreSQL connection per subscriber: not past this many (100)",
    )
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--pg", default=ADMIN)
    parser.add_argument("--redis", help="REDIS_URL for both servers (a random key prefix); default none")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers and drop the database
    if not wrk_available():
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    directory = Path(tempfile.mkdtemp(prefix="flagsvc-bench-events-"))
    database, name = prepare(directory, args.pg)
    if args.redis:
        EXTRA.update(REDIS_URL=args.redis, REDIS_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}")
    web = start("web", GUNICORN, database, WEB_CONCURRENCY="2", GUNICORN_THREADS="2")
    results: list[dict[str, Any]] = []
    try:
        wait_ready(web)
        access = token(web, database)
        status, data = request(web, "POST", "/v1/flags", {"key": "bench", "state": "on"}, api_headers(access))
        if status != 201:
            raise RuntimeError(f"flag: {status} {data}")
        script = wrk_script(directory, "evaluate", "/v1/evaluate", api_headers(access), EVALUATE_BODY)
        for _ in range(args.runs):
            for model in args.models.split(","):
                for count in (int(n) for n in args.subscribers.split(",")):
                    if model == "threads" and count > args.threads_max:
                        print(
                            f"threads: {count} subscribers skipped (a database connection each)", flush=True
                        )
                        continue
                    result = one_run(model, count, database, web, access, script, args)
                    results.append(result)
                    print(json.dumps(result), flush=True)
    finally:
        stop_server(web)
        drop(args.pg, name)
    print()
    print(f"machine: {json.dumps(machine())}; redis: {bool(args.redis)}")
    print(
        "| model | subscribers | held | connect s | RSS MB | p50 ms | p99 ms | missed | p99 ms under load "
        "| evaluate rps without | with | ratio | stream CPU (cores) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["model"], r["subscribers"]) for r in results}, key=lambda k: (k[0], k[1]))
    summary = []
    for model, count in keys:
        rows = [r for r in results if r["model"] == model and r["subscribers"] == count]
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k not in ("model",)}
        med["model"] = model
        summary.append(med)
        print(
            f"| {model} | {count} | {med['held']:.0f} | {med['connect_seconds']:.1f} | {med['stream_rss_mb']:.0f} "
            f"| {med['p50_ms']:.0f} | {med['p99_ms']:.0f} | "
            f"{med['missed']:.0f} | {med['under_load_p99_ms']:.0f} | {med['evaluate_rps_without']:.0f} | "
            f"{med['evaluate_rps_with']:.0f} | {med['ratio']:.2f} | {med.get('stream_cpu_share', float('nan')):.2f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "runs": results, "median": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
