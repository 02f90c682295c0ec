"""Instructions per request, counted by valgrind's callgrind: load-independent, unlike any clock.

The machine is shared, so CPU time per request moves by ±20 % with other people's work; the number
of instructions executed does not (to well under 1 %). This script runs the same requests twice
under ``valgrind --tool=callgrind``, ``--short`` and ``--long`` requests after the same warm-up, and
reports (long - short) / (difference in requests): start-up, import and warm-up cancel out.

Two levels:

- ``app``: the WSGI application called with a raw environ in a loop (no sockets, no gunicorn), as
  ``_inprocess.py`` does. ``--app bare`` is the bare Django view (``bare_app.py``).
- ``server``: gunicorn with ``gunicorn.conf.py`` (one worker, our ``BufferingThreadWorker``) under
  callgrind, fed by a client in this process over ``--conns`` kept-alive connections; the count is
  the worker process's (gunicorn's event loop, threads, parsing and writing included).

Against the database and token ``http_bench.py setup`` of the peers harness made
(``$SCRATCH/ours/{bench.sqlite3,state.json}``, ``SCRATCH`` default ``/tmp/peers``)::

    .venv/bin/python benchmarks/instructions.py app --route evaluate
    .venv/bin/python benchmarks/instructions.py app --app bare
    .venv/bin/python benchmarks/instructions.py server --route bulk --port 18520
    .venv/bin/python benchmarks/instructions.py calls --route evaluate --short 100 --long 300

``calls`` counts Python function calls per request with cProfile instead (deterministic too, and
fast): the stand-in when the machine is too busy for callgrind.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRATCH = Path(os.environ.get("SCRATCH", "/tmp/peers"))  # the peers harness's default
STATE = SCRATCH / "ours" / "state.json"
DATABASE = SCRATCH / "ours" / "bench.sqlite3"
BODIES = {
    "evaluate": (
        "/v1/evaluate",
        '{"flag_key":"new-checkout","user":{"id":"u-%d","attributes":{"country":"DE"}}}',
    ),
    "bulk": ("/v1/evaluate/bulk", '{"user":{"id":"u-%d","attributes":{"country":"DE"}}}'),
}


def _env(app: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(
        DEBUG="0",
        JWT_SECRET="perf-only-jwt-secret-of-at-least-32-bytes-long",
        SECRET_KEY="perf-only-django-secret-key",
        DATABASE_URL=f"sqlite:///{DATABASE}",
        RATE_LIMIT_WRITES="100000/min",
        JWT_TTL_SECONDS="14400",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'benchmarks'}",
        INSTR_APP=app,
        # Work done once per interval rather than per request (the ruleset version check every
        # 0.5 s, the API-client check every 10 s, the usage flush every 5 s) is left out: under
        # callgrind a request takes ~50x longer, so it would land on far fewer requests than in a
        # server. At 3,000 requests/s it is one request in 1,500.
        RULESET_CHECK_INTERVAL="3600",
        API_CLIENT_CHECK_INTERVAL="3600",
        USAGE_FLUSH_SECONDS="0",
    )
    return env


def _token() -> str:
    return str(json.loads(STATE.read_text())["token"])


def _total_instructions(out_file: str) -> int:
    text = Path(out_file).read_text()
    match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no totals in {out_file}")
    return int(match.group(1))


# --- app level -------------------------------------------------------------------------------------


def _app_worker() -> None:
    """Run inside callgrind: warm up, then serve INSTR_COUNT requests through the WSGI app."""
    import _inprocess

    if os.environ["INSTR_APP"] == "bare":
        import bare_app

        application = bare_app.application
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
        from flagsvc.wsgi import application
    path, template = BODIES[os.environ["INSTR_ROUTE"]]
    token = os.environ["INSTR_TOKEN"]
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def one(n: int) -> None:
        body = (template % n).encode()
        # The same environ the in-process benchmarks build (one home for it).
        environ = _inprocess._environ(path, body, {"Authorization": f"Bearer {token}", "X-Tenant-ID": "acme"})
        result = application(environ, start_response)
        b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()

    warm = int(os.environ["INSTR_WARM"])
    for n in range(warm):
        one(n)
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"status {statuses[-1]}")
    gc.freeze()  # as gunicorn.conf.py's post_worker_init does once the worker is warm
    for n in range(int(os.environ["INSTR_COUNT"])):
        one(warm + n)
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"status {statuses[-1]}")


def app_instructions(app: str, route: str, short: int, long: int, warm: int) -> dict[str, Any]:
    counts = {}
    with tempfile.TemporaryDirectory(prefix="instr-") as tmp:
        for count in (short, long):
            out = f"{tmp}/cg.{count}"
            env = _env(app) | {
                "INSTR_ROUTE": route,
                "INSTR_TOKEN": _token(),
                "INSTR_WARM": str(warm),
                "INSTR_COUNT": str(count),
            }
            with open(f"{tmp}/log.{count}", "w") as log:
                subprocess.run(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                     __file__, "_app_worker"],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                )  # fmt: skip
            counts[count] = _total_instructions(out)
    per_request = (counts[long] - counts[short]) / (long - short)
    return {"level": "app", "app": app, "route": route, "instructions_per_request": round(per_request)}


# --- server level ----------------------------------------------------------------------------------


def _request_bytes(route: str, token: str, n: int) -> bytes:
    path, template = BODIES[route]
    body = (template % n).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nX-Tenant-ID: acme\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_response(sock: socket.socket, buffered: bytearray) -> int:
    """Read one response with a Content-Length off ``sock``; its status."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffered += chunk
    head_end = buffered.index(b"\r\n\r\n") + 4
    head = bytes(buffered[:head_end])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(buffered) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffered += chunk
    del buffered[: head_end + length]
    return int(head.split(b" ", 2)[1])


def _drive(port: int, route: str, token: str, conns: int, count: int, start: int) -> None:
    """``count`` requests over ``conns`` kept-alive connections, each with one request in flight."""
    import selectors

    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        sock = socket.create_connection(("127.0.0.1", port))
        socks.append(sock)
    sent = 0
    done = 0
    buffers = {sock: bytearray() for sock in socks}
    for sock in socks:
        if sent < count:
            sock.sendall(_request_bytes(route, token, start + sent))
            sent += 1
            selector.register(sock, selectors.EVENT_READ)
    while done < count:
        for key, _ in selector.select(timeout=60):
            sock = key.fileobj  # type: ignore[assignment]
            status = _read_response(sock, buffers[sock])  # type: ignore[arg-type]
            if status != 200:
                raise RuntimeError(f"status {status}")
            done += 1
            if sent < count:
                sock.sendall(_request_bytes(route, token, start + sent))  # type: ignore[attr-defined]
                sent += 1
    for sock in socks:
        sock.close()


def _wait_ready(port: int, deadline: float) -> None:
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("server not ready")


def server_instructions(
    app: str, route: str, short: int, long: int, warm: int, conns: int, port: int
) -> dict[str, Any]:
    token = _token()
    counts = {}
    module = "bare_app:application" if app == "bare" else "flagsvc.wsgi"
    with tempfile.TemporaryDirectory(prefix="instr-") as tmp:
        for count in (short, long):
            env = _env(app) | {"WEB_CONCURRENCY": "1", "GUNICORN_BIND": f"127.0.0.1:{port}"}
            env.pop("GUNICORN_THREADS", None)
            log = open(f"{tmp}/log.{count}", "w")  # noqa: SIM115 - closed below
            server = subprocess.Popen(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.{count}.%p",
                 str(REPO / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", module],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                _wait_ready(port, time.time() + 600)
                _drive(port, route, token, conns, warm, 0)
                _drive(port, route, token, conns, count, warm)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=300)
                log.close()
            master = f"{tmp}/cg.{count}.{server.pid}"
            workers = [f for f in glob.glob(f"{tmp}/cg.{count}.*") if f != master]
            if len(workers) != 1:
                raise RuntimeError(f"expected one worker profile, got {workers}")
            counts[count] = _total_instructions(workers[0])
    per_request = (counts[long] - counts[short]) / (long - short)
    return {
        "level": "server",
        "app": app,
        "route": route,
        "conns": conns,
        "instructions_per_request": round(per_request),
    }


def app_calls(app: str, route: str, short: int, long: int, warm: int) -> dict[str, Any]:
    """Python function calls per request (cProfile's count, deterministic like the instructions):
    the quick stand-in when callgrind is too slow on a busy machine."""
    import pstats

    counts = {}
    with tempfile.TemporaryDirectory(prefix="calls-") as tmp:
        for count in (short, long):
            out = f"{tmp}/prof.{count}"
            env = _env(app) | {
                "INSTR_ROUTE": route,
                "INSTR_TOKEN": _token(),
                "INSTR_WARM": str(warm),
                "INSTR_COUNT": str(count),
            }
            with open(f"{tmp}/log.{count}", "w") as log:
                subprocess.run(
                    [sys.executable, "-m", "cProfile", "-o", out, __file__, "_app_worker"],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                )  # fmt: skip
            counts[count] = pstats.Stats(out).total_calls  # type: ignore[attr-defined]
    per_request = (counts[long] - counts[short]) / (long - short)
    return {"level": "calls", "app": app, "route": route, "calls_per_request": round(per_request, 1)}


def main() -> None:
    if sys.argv[1:] == ["_app_worker"]:
        _app_worker()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("level", choices=["app", "server", "calls"])
    parser.add_argument("--app", choices=["flagsvc", "bare"], default="flagsvc")
    parser.add_argument("--route", choices=sorted(BODIES), default="evaluate")
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--long", type=int, default=250)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--port", type=int, default=18520)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.level == "app":
        result = app_instructions(args.app, args.route, args.short, args.long, args.warm)
    elif args.level == "calls":
        result = app_calls(args.app, args.route, args.short, args.long, args.warm)
    else:
        result = server_instructions(
            args.app, args.route, args.short, args.long, args.warm, args.conns, args.port
        )
    result["command"] = " ".join(sys.argv)
    print(json.dumps(result))
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
