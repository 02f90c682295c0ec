"""The SDK (``flagsvc_sdk.FlagClient``): what a caller pays per flag, and how fast a write reaches it.

1. **Per call**, in one process, round-robin (``_common.interleaved``), CPU time, over the same
   pre-generated distinct users (``{"id", "attributes"}`` dicts, the caller's form):

   - ``floor``: ``floor_eval(uid)``, a function doing one ``mmh3.hash`` of ``"acme:flag:<uid>"``
     and one dict lookup (``/work/shared/bench/peers``' floor): no SDK can bucket a user for less;
   - ``sdk bool_value simple``: ``client.bool_value(key, user, False)`` on the simple flag
     (``country == "NL"`` → on, else 50/50 by id), with the user check the SDK does on every call;
   - ``sdk string_value complex``: the complex flag whose first rule is the real pattern
     ``^[a-z0-9._%+-]+@acme\\.com$`` (RE2, no suffix shortcut), then ``age between [30, 40]``,
     ``plan in [pro, enterprise]``, else a 50/30/20 split;
   - ``engine evaluate`` of both, on users already checked: what the server's engine call costs;
   - ``validate_user``: the user check alone.

   It needs the compiled SDK (``make compiled-sdk``) and re-runs itself with it on ``PYTHONPATH``.

2. **Write-to-SDK latency** (``--clients``, default 100): gunicorn and the stream process on a
   throwaway SQLite database (Redis for the stream's wake-up when ``--redis`` is given), N
   ``FlagClient``s in this process, each following the stream. Each write (``PATCH`` a flag) is
   timed from just before the request to the moment each client's snapshot serves the new version
   (its change listener); p50 and p99 over every client and write.

Results: ``benchmarks/RESULTS.md`` ("SDK"). ``--quick`` is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO,
    autorange,
    header,
    interleaved,
    median,
    spread,
    table,
    timed,
    verdict,
    write_json,
)

COMPILED_DIR = REPO / ".sdk-compiled"
TARGET_VS_FLOOR = 2.5
TARGET_P99_SECONDS = 1.0
EMAIL_PATTERN = r"^[a-z0-9._%+-]+@acme\.com$"
SIMPLE = {
    "key": "new-checkout",
    "state": "on",
    "version": 1,
    "variants": [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
}
COMPLEX = {
    "key": "pricing-experiment",
    "type": "string",
    "state": "on",
    "version": 1,
    "variants": [
        {"key": k, "value": k, "weight": w}
        for k, w in (("rule1", 0), ("rule2", 0), ("rule3", 0), ("a", 50), ("b", 30), ("c", 20))
    ],
    "off_variant": "a",
    "rules": [
        {
            "id": "rule1",
            "when": {"attr": "email", "op": "regex", "value": EMAIL_PATTERN},
            "serve": {"variant": "rule1"},
        },
        {
            "id": "rule2",
            "when": {"attr": "age", "op": "between", "value": [30, 40]},
            "serve": {"variant": "rule2"},
        },
        {
            "id": "rule3",
            "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
            "serve": {"variant": "rule3"},
        },
    ],
}


def make_users(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Distinct users, the population of the peers' harness (10 % NL, 10 % @acme.com, 30 % pro)."""
    import random

    rng = random.Random(seed)
    countries = ["NL", "DE", "FR", "US", "GB", "ES", "IT", "PL", "SE", "BE"]
    domains = ["acme.com", "gmail.com", "example.com", "yahoo.com", "outlook.com", "proton.me", "initech.io"]
    plans = ["free"] * 6 + ["pro"] * 2 + ["enterprise", "team"]
    return [
        {
            "id": f"user-{seed}-{i:07d}",
            "attributes": {
                "country": rng.choice(countries),
                "email": f"u{i}.x@{rng.choice(domains)}",
                "age": rng.randint(13, 80),
                "plan": rng.choice(plans),
            },
        }
        for i in range(count)
    ]


# --- 1. per call --------------------------------------------------------------------------------


def per_call(args: argparse.Namespace) -> dict[str, Any]:
    import mmh3
    from flagsvc_sdk import FlagClient
    from flagsvc_sdk.engine import COMPILED, compile_ruleset, evaluate, validate_user

    ruleset = compile_ruleset(tenant="acme", version="1", flags=[SIMPLE, COMPLEX], segments=[])
    client = FlagClient("http://127.0.0.1:9", "bench", "bench", "acme", start=False)
    client._local.ruleset = ruleset  # what a loaded snapshot installs; no I/O in this part
    users = make_users(args.users)
    ids = [user["id"] for user in users]
    # Semantics first: the SDK answers exactly as the engine does on every user.
    for user in users[:5000]:
        assert client.bool_value("new-checkout", user, None) is evaluate(ruleset, "new-checkout", user).value  # type: ignore[arg-type]
        assert (
            client.string_value("pricing-experiment", user, "?")
            == evaluate(ruleset, "pricing-experiment", user).value
        )

    table_ = {"new-checkout": 0.5}

    def floor_eval(uid: str, _h: Any = mmh3.hash, _t: dict[str, float] = table_) -> bool:
        return bool(_h(f"acme:new-checkout:{uid}", 0, False) / 4294967296.0 < _t["new-checkout"])

    def loop(fn: Any) -> Any:
        def run(loops: int) -> None:
            for _ in range(loops):
                fn()

        return timed(run)

    def floor() -> None:
        for uid in ids:
            floor_eval(uid)

    bool_value, string_value = client.bool_value, client.string_value

    def sdk_simple() -> None:
        for user in users:
            bool_value("new-checkout", user, False)

    def sdk_complex() -> None:
        for user in users:
            string_value("pricing-experiment", user, "a")

    def engine_simple() -> None:
        for user in users:
            evaluate(ruleset, "new-checkout", user)

    def engine_complex() -> None:
        for user in users:
            evaluate(ruleset, "pricing-experiment", user)

    def check_only() -> None:
        for user in users:
            validate_user(user)

    functions = {
        "floor": floor,
        "sdk bool_value simple": sdk_simple,
        "sdk string_value complex": sdk_complex,
        "engine evaluate simple": engine_simple,
        "engine evaluate complex": engine_complex,
        "validate_user": check_only,
    }
    contenders = {}
    for name, fn in functions.items():
        run = loop(fn)
        contenders[name] = (run, autorange(run, args.min_time))
    samples = interleaved(contenders, args.rounds, {name: len(users) for name in functions})
    floor_samples = samples["floor"]
    rows, results = [], {}
    for name, values in samples.items():
        ratios = [value / base for value, base in zip(values, floor_samples, strict=True)]
        results[name] = {"ns": median(values) * 1e9, "ratio": median(ratios), "spread": spread(values)}
        rows.append([name, f"{median(values) * 1e9:.0f}", f"{median(ratios):.2f}x", spread(values)])
    return {
        "compiled": COMPILED,
        "users": len(users),
        "rounds": args.rounds,
        "results": results,
        "rows": rows,
    }


# --- 2. write-to-SDK latency --------------------------------------------------------------------


def latency(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    from _server import Database, base_env, free_port, manage, request, stop_server, wait_ready
    from _server import Server as Process
    from flagsvc_sdk import FlagClient

    directory = Path(tempfile.mkdtemp(prefix="bench-sdk-"))
    url = f"sqlite:///{directory / 'bench.sqlite3'}"
    extra = {
        "RATE_LIMIT_TOKEN": "100000/min",
        "SNAPSHOT_SIGNING_KEY": args.signing_key,
        "SNAPSHOT_SIGNING_KEY_ID": "bench",
    }
    if args.redis:
        extra |= {"REDIS_URL": args.redis, "REDIS_KEY_PREFIX": f"bench-sdk-{os.getpid()}"}
    env = base_env(url, **extra)
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
    database = Database(directory, url, client["client_id"], client["client_secret"])

    def start(name: str, command: list[str]) -> Process:
        port = free_port()
        process_env = base_env(database.url, PORT=str(port), EVENTS_PORT=str(port), HOST="127.0.0.1", **extra)
        with (directory / f"{name}.log").open("ab") as sink:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=process_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Process(name, port, process, directory / f"{name}.log", process_env)

    python = str(REPO / ".venv" / "bin" / "python")
    web = start("web", [str(REPO / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "flagsvc.wsgi"])
    stream = start("stream", [python, "-m", "flagsvc.stream"])
    clients: list[FlagClient] = []
    try:
        wait_ready(web)
        wait_ready(stream, path="/healthz")
        token = httpx.post(
            f"{web.base}/v1/auth/token",
            json={"client_id": client["client_id"], "client_secret": client["client_secret"]},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": "acme"}
        created = httpx.post(
            f"{web.base}/v1/flags", json={"key": "kill-switch", "state": "on"}, headers=headers
        )
        assert created.status_code == 201, created.text
        seen: dict[tuple[int, str], float] = {}
        lock = threading.Lock()

        def listener(sdk: FlagClient, index: int) -> None:
            version = sdk.ruleset_version or ""
            now = time.perf_counter()
            with lock:
                seen.setdefault((index, version), now)

        for index in range(args.clients):
            sdk = FlagClient(
                web.base,
                client["client_id"],
                client["client_secret"],
                "acme",
                events_url=stream.base,
                start_wait=0,
                poll_interval=60,
            )
            sdk.on_change(lambda s, i=index: listener(s, i))
            clients.append(sdk)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            c.ready and c.stats().get("stream_connects") for c in clients
        ):
            time.sleep(0.1)
        connected = sum(1 for c in clients if c.stats().get("stream_connects"))
        delays: list[float] = []
        missed = 0
        current = int(clients[0].ruleset_version or 0)
        for write in range(args.writes):
            time.sleep(args.pause)
            started = time.perf_counter()
            answer = httpx.patch(
                f"{web.base}/v1/flags/kill-switch",
                json={"state": "off" if write % 2 == 0 else "on"},
                headers=headers,
            )
            assert answer.status_code == 200, answer.text
            current += 1  # one write, one ruleset version (ADR 0012)
            version = str(current)
            limit = time.monotonic() + 5
            while time.monotonic() < limit and not all((i, version) in seen for i in range(args.clients)):
                time.sleep(0.005)
            for i in range(args.clients):
                at = seen.get((i, version))
                if at is None:
                    missed += 1
                else:
                    delays.append(at - started)
        delays.sort()

        def pct(p: float) -> float:
            return delays[min(len(delays) - 1, int(p * len(delays)))] if delays else float("nan")

        return {
            "clients": args.clients,
            "connected": connected,
            "writes": args.writes,
            "samples": len(delays),
            "missed": missed,
            "p50_ms": pct(0.50) * 1000,
            "p99_ms": pct(0.99) * 1000,
            "max_ms": (delays[-1] if delays else float("nan")) * 1000,
            "mean_ms": statistics.fmean(delays) * 1000 if delays else float("nan"),
            "redis": bool(args.redis),
        }
    finally:
        for sdk in clients:
            sdk.close(timeout=1)
        stop_server(stream)
        stop_server(web)
        _ = request  # imported for symmetry with the other scripts


def signing_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between writes")
    parser.add_argument("--redis", default="", help="REDIS_URL for the servers (the stream wakes on pub/sub)")
    parser.add_argument("--no-calls", action="store_true")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rounds, args.min_time, args.clients, args.writes = 10_000, 3, 0.05, 10, 4
    args.signing_key = signing_key()

    from flagsvc_sdk.engine import COMPILED

    if not COMPILED and not args.no_calls and os.environ.get("BENCH_SDK_REEXEC") != "1":
        subprocess.run(["make", "--no-print-directory", "compiled-sdk"], cwd=REPO, check=True)
        env = {**os.environ, "PYTHONPATH": str(COMPILED_DIR), "BENCH_SDK_REEXEC": "1"}
        os.execve(
            sys.executable, [sys.executable, str(Path(__file__).resolve()), *(argv or sys.argv[1:])], env
        )

    print(header("SDK: per call and write-to-SDK latency"))
    report: dict[str, Any] = {}
    if not args.no_calls:
        calls = per_call(args)
        report["calls"] = calls
        print(
            f"Per call: {calls['users']:,} distinct users, median of {calls['rounds']} rounds, compiled SDK: {calls['compiled']}\n"
        )
        print(table(["contender", "ns per call", "x floor", "spread"], calls["rows"]))
        simple = calls["results"]["sdk bool_value simple"]["ratio"]
        print(
            f"\nsdk bool_value simple: {simple:.2f}x the floor (target <= {TARGET_VS_FLOOR}x: {verdict(simple <= TARGET_VS_FLOOR)})"
        )
        complex_ = calls["results"]["sdk string_value complex"]["ratio"]
        print(f"sdk string_value complex (the real email pattern): {complex_:.2f}x the floor\n")
    if not args.no_latency:
        result = latency(args)
        report["latency"] = result
        print(
            table(
                [
                    "clients",
                    "following the stream",
                    "writes",
                    "samples",
                    "missed",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                ],
                [
                    [
                        result["clients"],
                        result["connected"],
                        result["writes"],
                        result["samples"],
                        result["missed"],
                        f"{result['p50_ms']:.0f}",
                        f"{result['p99_ms']:.0f}",
                        f"{result['max_ms']:.0f}",
                    ]
                ],
            )
        )
        print(
            f"\nwrite-to-SDK p99 {result['p99_ms']:.0f} ms (target < 1000 ms: {verdict(result['p99_ms'] < 1000 and result['missed'] == 0)})"
        )
    write_json(args.json, report)


if __name__ == "__main__":
    main()
