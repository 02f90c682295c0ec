"""Load test: two server processes on PostgreSQL and Redis, 95 % evaluations and 5 % writes (issue 16, item 5).

    .venv/bin/python benchmarks/bench_load.py                             # 60 s, 16 connections, 1,000 tenants
    .venv/bin/python benchmarks/bench_load.py --seconds 20 --tenants 100   # a smaller run first
    .venv/bin/python benchmarks/bench_load.py --rate 100                  # 100 requests/s, not back to back

What it does, everything on 127.0.0.1, stopped and dropped at the end:

1. a throwaway PostgreSQL database (`--pg`, created and dropped here) and a random key prefix on Redis
   (`--redis`, db 14 by default), `migrate`;
2. seeding, in its own process, through the services (`_load_seed.py`): `--tenants` tenants (one, `big`, with
   `--big-flags` flags, `--seed bulk` (default) or `import`: see `_load_seed.py`), an API client
   and a token each, and `--flags-per-tenant` flags `lt-0..` in every tenant; timed, reported apart;
3. two gunicorn processes (`gunicorn -c gunicorn.conf.py flagsvc.wsgi`, separate ports, `--workers` x
   `--threads`, 2 x 2 by default as in RESULTS.md), both on the same database and Redis;
4. warm-up (unrecorded): every tenant evaluated once on every server, then `--warmup` s of the mixed load;
5. `--seconds` s of the mixed load from this process (one asyncio loop, plain HTTP/1.1 keep-alive over
   `asyncio` streams: cheaper on the CPU than an HTTP library): `--connections` connections, half on each
   server; each request is a write (`PATCH /v1/flags/lt-N` with new rollout weights) with probability
   `--write-share`, else `POST /v1/evaluate` of a random tenant's flag for a random user (`--big-share` of
   them in the big tenant, over all its flags);
6. after every write, a checker polls `POST /v1/evaluate` of that flag on BOTH servers (every 20 ms, on
   `--check-connections` new connections per server and write, so several workers are sampled) until each
   connection answers `details.flag_version` >= the written version: the write's visibility time on the
   process that took it (read-your-writes) and on the other one. Checker requests are not in the latency
   figures, but their errors are counted.

Reported: every non-2xx (and every connection error) counted, evaluate p50/p95/p99/max, write
p50/p99/max, visibility p50/p99/max per process, requests/s, the CPU of each server and of this client,
the load average before and after, the seeding times. Targets (issue 16, item 6): evaluate p95 < 20 ms and
p99 < 10 ms at 16 connections, every write visible everywhere within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, MAIN_PYTHON, REPO, command_line, load_average, machine, table
from _server import HOST, Server, base_env, free_port, manage, server_cpu_seconds, stop_server, wait_ready
from _workloads import flag_key

ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
GUNICORN = [str(REPO / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "flagsvc.wsgi"]
VISIBLE_TIMEOUT = 10.0
POLL_INTERVAL = 0.02


# --- database and servers ----------------------------------------------------------------------------


def create_database(pg: str) -> tuple[str, str]:
    name = f"flagsvc_bench_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_database(pg: str, name: str) -> None:
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def seed(directory: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    out = directory / "seed.json"
    log = directory / "seed.log"
    with log.open("ab") as sink:
        done = subprocess.run(
            [
                *(str(MAIN_PYTHON), str(BENCH_DIR / "_load_seed.py"), str(out), str(args.tenants)),
                *(str(args.big_flags), str(args.flags_per_tenant), args.seed),
            ],
            cwd=REPO,
            env={**env, "JWT_TTL_SECONDS": "7200"},
            stdout=sink,
            stderr=sink,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed; see {log}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def start(name: str, directory: Path, env: dict[str, str], workers: int, threads: int) -> Server:
    port = free_port()
    server_env = {
        **env,
        "PORT": str(port),
        "HOST": HOST,
        "GUNICORN_BIND": f"{HOST}:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    log = directory / f"{name}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            GUNICORN, cwd=REPO, env=server_env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, process, log, server_env)


def wait_warm(server: Server, workers: int, timeout: float = 900.0) -> None:
    """Until every worker has compiled every tenant (`post_worker_init`) and logged it: before that, a
    worker takes no traffic, and its compiles would share the CPU with the measured load."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log.read_text(errors="replace").count("rules cache warm for") >= workers:
            return
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        time.sleep(0.5)
    raise RuntimeError(f"{server.name}: workers not warm after {timeout:.0f} s; see {server.log}")


# --- a minimal HTTP/1.1 keep-alive client ------------------------------------------------------------


class Connection:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            assert self.reader is not None
            try:
                self.writer.write(head + body)
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed")
            except (ConnectionError, OSError):
                await self.close()
                if attempt:
                    raise
                continue  # a keep-alive connection the server had closed: once more on a new one
            return await self._response(status_line)
        raise AssertionError("unreachable")

    async def _response(self, status_line: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lowered == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected here")
        body = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body


# --- the workload ------------------------------------------------------------------------------------


@dataclass
class Stats:
    evaluate: list[float] = field(default_factory=list)
    write: list[float] = field(default_factory=list)
    visible_same: list[float] = field(default_factory=list)
    visible_other: list[float] = field(default_factory=list)
    visible_all: list[float] = field(default_factory=list)
    not_visible: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    checker_requests: int = 0


class Load:
    def __init__(self, args: argparse.Namespace, servers: list[Server], tokens: dict[str, str]) -> None:
        self.args = args
        self.servers = servers
        self.headers = {
            slug: f"Authorization: Bearer {token}\r\nX-Tenant-ID: {slug}\r\n"
            for slug, token in tokens.items()
        }
        self.small = [slug for slug in tokens if slug != "big"]
        self.rng = random.Random(16)
        self.record = False
        self.stats = Stats()
        self.checks: set[asyncio.Task[None]] = set()

    def _tenant(self, big_share: float) -> str:
        if not self.small or self.rng.random() < big_share:
            return "big"
        return self.rng.choice(self.small)

    def _evaluate_body(self, tenant: str, key: str | None = None) -> bytes:
        if key is None:
            count = self.args.flags_per_tenant + (self.args.big_flags if tenant == "big" else 0)
            index = self.rng.randrange(count)
            key = (
                f"lt-{index}"
                if index < self.args.flags_per_tenant
                else flag_key(index - self.args.flags_per_tenant)
            )
        user = {"id": f"u-{self.rng.randrange(100_000):07d}", "attributes": {"country": "DE"}}
        return json.dumps({"flag_key": key, "user": user}).encode()

    def _error(self, what: str) -> None:
        self.stats.errors[what] += 1

    async def worker(self, index: int, deadline: float) -> None:
        """One connection: requests back to back, or with `--rate`, each at its scheduled time (the
        connections share the rate, staggered), its latency counted from that time: a request that
        waited for the one before it counts the wait (no coordinated omission)."""
        server_index = index % len(self.servers)
        conn = Connection(self.servers[server_index].port)
        interval = self.args.connections / self.args.rate if self.args.rate else 0.0
        next_at = time.perf_counter() + interval * index / max(1, self.args.connections)
        try:
            while time.monotonic() < deadline:
                scheduled = None
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    scheduled, next_at = next_at, next_at + interval
                if self.rng.random() < self.args.write_share:
                    await self._write(conn, server_index, scheduled)
                else:
                    await self._evaluate(conn, scheduled)
        finally:
            await conn.close()

    async def _evaluate(self, conn: Connection, scheduled: float | None = None) -> None:
        tenant = self._tenant(self.args.big_share)
        body = self._evaluate_body(tenant)
        started = time.perf_counter() if scheduled is None else scheduled
        try:
            status, _ = await conn.request("POST", "/v1/evaluate", self.headers[tenant], body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._error(f"evaluate {type(exc).__name__}")
            return
        elapsed = time.perf_counter() - started
        if not 200 <= status < 300:
            self._error(f"evaluate {status}")
        elif self.record:
            self.stats.evaluate.append(elapsed)

    async def _write(self, conn: Connection, server_index: int, scheduled: float | None = None) -> None:
        tenant = self._tenant(self.args.big_write_share)
        key = f"lt-{self.rng.randrange(self.args.flags_per_tenant)}"
        weight = self.rng.randrange(1, 100)
        body = json.dumps(
            {
                "variants": [
                    {"key": "on", "value": True, "weight": weight},
                    {"key": "off", "value": False, "weight": 100 - weight},
                ]
            }
        ).encode()
        started = time.perf_counter() if scheduled is None else scheduled
        try:
            status, raw = await conn.request("PATCH", f"/v1/flags/{key}", self.headers[tenant], body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._error(f"write {type(exc).__name__}")
            return
        acknowledged = time.perf_counter()
        if not 200 <= status < 300:
            self._error(f"write {status}")
            return
        if self.record:
            self.stats.write.append(acknowledged - started)
        version = int(json.loads(raw)["version"])
        task = asyncio.create_task(self._visibility(tenant, key, version, server_index, acknowledged))
        self.checks.add(task)
        task.add_done_callback(self.checks.discard)

    async def _visibility(self, tenant: str, key: str, version: int, written_on: int, since: float) -> None:
        """Seconds from the write's response until every checker connection of each server sees it."""
        body = self._evaluate_body(tenant, key)
        record = self.record

        async def seen(conn: Connection) -> float | None:
            while time.perf_counter() - since < VISIBLE_TIMEOUT:
                self.stats.checker_requests += 1
                try:
                    status, raw = await conn.request("POST", "/v1/evaluate", self.headers[tenant], body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    self._error(f"check {type(exc).__name__}")
                    status, raw = 0, b""
                if 200 <= status < 300:
                    if int(json.loads(raw)["details"]["flag_version"]) >= version:
                        return time.perf_counter() - since
                elif status:
                    self._error(f"check {status}")
                await asyncio.sleep(POLL_INTERVAL)
            return None

        # Fresh connections for each write: each lands on whichever worker accepts it, so the workers of
        # a server are sampled, and one write's polls never queue behind another's.
        conns = [
            [Connection(server.port) for _ in range(self.args.check_connections)] for server in self.servers
        ]
        try:
            results = await asyncio.gather(*(seen(conn) for group in conns for conn in group))
        finally:
            for group in conns:
                for conn in group:
                    await conn.close()
        width = self.args.check_connections
        per_server = []
        for index in range(len(self.servers)):
            times = results[index * width : (index + 1) * width]
            per_server.append(
                None if any(t is None for t in times) else max(t for t in times if t is not None)
            )
        if not record:
            return
        if any(t is None for t in per_server):
            self.stats.not_visible += 1
            return
        done = [t for t in per_server if t is not None]
        self.stats.visible_same.append(done[written_on])
        self.stats.visible_other.extend(t for i, t in enumerate(done) if i != written_on)
        self.stats.visible_all.append(max(done))

    async def warm(self) -> None:
        """Every tenant once on every server (each process compiles what it serves), unrecorded."""
        conns = [Connection(server.port) for server in self.servers for _ in range(4)]
        slugs = list(self.headers)

        async def run(conn: Connection, part: list[str]) -> None:
            for slug in part:
                status, raw = await conn.request(
                    "POST", "/v1/evaluate", self.headers[slug], self._evaluate_body(slug, "lt-0")
                )
                if status != 200:
                    raise RuntimeError(f"warm-up {slug}: {status} {raw[:200]!r}")

        await asyncio.gather(*(run(conn, slugs[i % 4 :: 4]) for i, conn in enumerate(conns)))
        for conn in conns:
            await conn.close()

    async def run(self, seconds: float, record: bool) -> float:
        self.record = record
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(self.worker(i, deadline) for i in range(self.args.connections)))
        elapsed = time.monotonic() - started
        if self.checks:
            await asyncio.gather(*list(self.checks))
        self.record = False
        return elapsed


# --- report ------------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds of mixed load (60)")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="unrecorded seconds of mixed load first (10)"
    )
    parser.add_argument("--connections", type=int, default=16, help="load connections, half per server (16)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="requests/s over all load connections, each sent at its scheduled time and timed from it "
        "(default 0: back to back, the machine saturated)",
    )
    parser.add_argument("--tenants", type=int, default=1000, help="tenants, the big one included (1000)")
    parser.add_argument("--big-flags", type=int, default=10_000, help="flags of the big tenant (10000)")
    parser.add_argument("--flags-per-tenant", type=int, default=3, help="lt-N flags in every tenant (3)")
    parser.add_argument(
        "--seed",
        choices=["bulk", "import"],
        default="bulk",
        help="the big tenant's flags: bulk_create (benchmark only, no audit) or ruleset_import (slow; see _load_seed.py)",
    )
    parser.add_argument("--write-share", type=float, default=0.05, help="share of writes (0.05)")
    parser.add_argument("--big-share", type=float, default=0.1, help="share of evaluations in the big tenant")
    parser.add_argument(
        "--big-write-share", type=float, default=0.5, help="share of writes in the big tenant"
    )
    parser.add_argument(
        "--check-connections", type=int, default=3, help="checker connections per server and write (3)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker (2)")
    parser.add_argument("--pg", default=ADMIN, help="PostgreSQL to create the throwaway database on")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/14", help="REDIS_URL (a random key prefix)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs (the database is always dropped)")
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()

    print(f"machine: {json.dumps(machine())}")
    print(f"command: {command_line()}")
    directory = Path(tempfile.mkdtemp(prefix="flagsvc-bench-load-"))
    name, url = create_database(args.pg)
    env = base_env(
        url,
        REDIS_URL=args.redis,
        REDIS_KEY_PREFIX=f"bench-load-{uuid.uuid4().hex[:8]}",
        PYTHONPATH=str(BENCH_DIR),
    )
    servers: list[Server] = []
    try:
        manage(env, "migrate", "--noinput", log=directory / "setup.log")
        began = time.perf_counter()
        seeded = seed(directory, env, args)
        timings = seeded["timings"]
        print(
            f"seeding ({args.tenants} tenants x {args.flags_per_tenant} flags through flag_create, "
            f"{args.big_flags} flags in `big` by {args.seed}): "
            + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
            + f" (process {time.perf_counter() - began:.1f} s)"
        )
        servers = [start(f"server-{i}", directory, env, args.workers, args.threads) for i in range(2)]
        began = time.perf_counter()
        for server in servers:
            wait_ready(server, timeout=180)
            wait_warm(server, args.workers)
        print(
            f"servers ready, every worker warm (gunicorn.conf.py warms every tenant): {time.perf_counter() - began:.1f} s"
        )
        load = Load(args, servers, seeded["tokens"])

        async def drive() -> tuple[float, float, list[float], str]:
            began = time.perf_counter()
            await load.warm()
            await load.run(args.warmup, record=False)
            print(f"warm-up: {time.perf_counter() - began:.1f} s; load average {load_average()}")
            cpu_before = [server_cpu_seconds(server) for server in servers]
            usage = resource.getrusage(resource.RUSAGE_SELF)
            client_before = usage.ru_utime + usage.ru_stime
            load_before = load_average()
            elapsed = await load.run(args.seconds, record=True)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            client_cpu = usage.ru_utime + usage.ru_stime - client_before
            server_cpu = [
                server_cpu_seconds(server) - before
                for server, before in zip(servers, cpu_before, strict=True)
            ]
            return elapsed, client_cpu, server_cpu, load_before

        elapsed, client_cpu, server_cpu, load_before = asyncio.run(drive())
        load_after = load_average()
    finally:
        for server in servers:
            stop_server(server)
        drop_database(args.pg, name)

    s = load.stats
    requests = len(s.evaluate) + len(s.write)
    errors = sum(s.errors.values())
    print(f"\nload average: before {load_before}, after {load_after}")
    print(
        f"{requests} requests in {elapsed:.1f} s = {requests / elapsed:.0f}/s ({len(s.evaluate)} evaluate, "
        f"{len(s.write)} writes), + {s.checker_requests} checker requests; errors (non-2xx or connection): "
        f"{errors} {dict(s.errors) if errors else ''}"
    )
    print(
        f"CPU: servers {' + '.join(f'{c:.1f}' for c in server_cpu)} s, client {client_cpu:.1f} s "
        f"({client_cpu / elapsed * 100:.0f} % of one core) over {elapsed:.1f} s wall"
    )
    rows = [
        [
            "evaluate",
            len(s.evaluate),
            ms(percentile(s.evaluate, 50)),
            ms(percentile(s.evaluate, 95)),
            ms(percentile(s.evaluate, 99)),
            ms(max(s.evaluate, default=float("nan"))),
        ],
        [
            "write (PATCH)",
            len(s.write),
            ms(percentile(s.write, 50)),
            ms(percentile(s.write, 95)),
            ms(percentile(s.write, 99)),
            ms(max(s.write, default=float("nan"))),
        ],
        [
            "visible, server that took it",
            len(s.visible_same),
            ms(percentile(s.visible_same, 50)),
            ms(percentile(s.visible_same, 95)),
            ms(percentile(s.visible_same, 99)),
            ms(max(s.visible_same, default=float("nan"))),
        ],
        [
            "visible, other server",
            len(s.visible_other),
            ms(percentile(s.visible_other, 50)),
            ms(percentile(s.visible_other, 95)),
            ms(percentile(s.visible_other, 99)),
            ms(max(s.visible_other, default=float("nan"))),
        ],
        [
            "visible everywhere",
            len(s.visible_all),
            ms(percentile(s.visible_all, 50)),
            ms(percentile(s.visible_all, 95)),
            ms(percentile(s.visible_all, 99)),
            ms(max(s.visible_all, default=float("nan"))),
        ],
    ]
    print()
    print(table(["ms", "n", "p50", "p95", "p99", "max"], rows))
    print(f"\nwrites never visible within {VISIBLE_TIMEOUT:.0f} s: {s.not_visible}")
    targets = [
        ["no error", "0", str(errors), "yes" if errors == 0 else "NO"],
        [
            "evaluate p95",
            "< 20 ms",
            ms(percentile(s.evaluate, 95)),
            "yes" if percentile(s.evaluate, 95) < 0.02 else "NO",
        ],
        [
            "evaluate p99",
            "< 10 ms",
            ms(percentile(s.evaluate, 99)),
            "yes" if percentile(s.evaluate, 99) < 0.01 else "NO",
        ],
        [
            "visible everywhere, max",
            "< 1000 ms",
            ms(max(s.visible_all, default=float("nan"))),
            "yes" if s.visible_all and max(s.visible_all) < 1 and not s.not_visible else "NO",
        ],
    ]
    print()
    print(table(["target (issue 16, item 6)", "target", "measured", "met"], targets))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "args": vars(args),
                    "seeding": timings,
                    "elapsed_s": elapsed,
                    "errors": dict(s.errors),
                    "not_visible": s.not_visible,
                    "client_cpu_s": client_cpu,
                    "server_cpu_s": server_cpu,
                    "load_before": load_before,
                    "load_after": load_after,
                    "evaluate_s": s.evaluate,
                    "write_s": s.write,
                    "visible_same_s": s.visible_same,
                    "visible_other_s": s.visible_other,
                    "visible_all_s": s.visible_all,
                }
            )
        )
    if args.keep:
        print(f"logs: {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
