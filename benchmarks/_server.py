"""Real servers for the HTTP benchmarks: a throwaway SQLite database, gunicorn processes, wrk.

Everything listens on 127.0.0.1 only. Server output goes to log files in the run's temporary
directory, never to the terminal. Only processes started here are ever stopped, by their pid.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, MAIN_PYTHON, REPO

HOST = "127.0.0.1"
JWT_SECRET = "benchmark-only-jwt-secret-of-at-least-32-bytes"
SECRET_KEY = "benchmark-only-django-secret-key"


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """The server's environment: production mode (DEBUG=0) with benchmark-only secrets."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "BENCH_DROP", "PYTHONPATH", "REDIS_URL")
    }
    env.update(
        DEBUG="0",
        JWT_SECRET=JWT_SECRET,
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        RATE_LIMIT_WRITES="100000/min",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Database:
    """A migrated SQLite database with tenant ``acme`` and one API client."""

    directory: Path
    url: str
    client_id: str
    client_secret: str


def manage(env: dict[str, str], *args: str, log: Path) -> str:
    with log.open("a") as sink:
        done = subprocess.run(
            [str(MAIN_PYTHON), "manage.py", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed; see {log}")
    return done.stdout


def prepare_database(directory: Path, tenant: str = "acme") -> Database:
    url = f"sqlite:///{directory / 'bench.sqlite3'}"
    env = base_env(url)
    log = directory / "setup.log"
    manage(env, "migrate", "--noinput", log=log)
    manage(env, "create_tenant", tenant, "--name", "Benchmark tenant", log=log)
    out = manage(
        env,
        *("create_api_client", "--tenant", tenant, "--json"),
        *("--scope", "evaluate", "--scope", "flags:write", "--scope", "segments:write"),
        log=log,
    )
    client = json.loads(out.strip().splitlines()[-1])
    return Database(directory, url, client["client_id"], client["client_secret"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


def start_server(
    name: str,
    app: str,
    database: Database,
    *,
    workers: int,
    threads: int,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start ``gunicorn -c gunicorn.conf.py <app>`` on loopback; output goes to ``<name>.log``."""
    port = free_port()
    env = base_env(
        database.url,
        PORT=str(port),
        HOST=HOST,
        GUNICORN_BIND=f"{HOST}:{port}",
        WEB_CONCURRENCY=str(workers),
        GUNICORN_THREADS=str(threads),
        PYTHONPATH=str(BENCH_DIR),
        **(extra_env or {}),
    )
    log = database.directory / f"{name}.log"
    sink = log.open("ab")
    process = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", app],
        cwd=REPO,
        env=env,
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sink.close()
    return Server(name, port, process, log, env)


def wait_ready(server: Server, path: str = "/readyz", timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        try:
            status, _ = request(server, "GET", path)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout}s; see {server.log}")


def stop_server(server: Server) -> None:
    """SIGTERM to the gunicorn master we started (it stops its workers), SIGKILL if it lingers."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's master and workers)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            pids.append(int(entry.name))
    return pids


def server_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds used so far by the server's master and workers (``/proc``)."""
    ticks = 0
    for pid in _process_tree(server.process.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def servers_running(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def request(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        return response.status, data
    finally:
        conn.close()


def token(server: Server, database: Database) -> str:
    status, data = request(
        server,
        "POST",
        "/v1/auth/token",
        {"client_id": database.client_id, "client_secret": database.client_secret},
    )
    if status != 200:
        raise RuntimeError(f"token: {status} {data}")
    return str(data["access_token"])


def api_headers(access_token: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", "X-Tenant-ID": tenant}


def create(server: Server, access_token: str, path: str, document: dict[str, Any]) -> None:
    status, data = request(server, "POST", path, document, api_headers(access_token))
    if status not in (200, 201):
        raise RuntimeError(f"POST {path} {document.get('key')}: {status} {data}")


# --- wrk ---------------------------------------------------------------------------------------

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,"
    .. "\\"p99_us\\":%d,\\"max_us\\":%d,\\"mean_us\\":%f,\\"status_errors\\":%d,"
    .. "\\"connect_errors\\":%d,\\"read_errors\\":%d,\\"write_errors\\":%d,\\"timeouts\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.status, e.connect, e.read, e.write,
    e.timeout))
end
"""


def wrk_script(directory: Path, name: str, path: str, headers: dict[str, str], body: str) -> Path:
    """A wrk Lua script POSTing ``body`` to ``path``; ``{n}`` in the body becomes a counter, so each
    request names a different user.
    """
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    left, marker, right = body.partition("{n}")
    lua_body = f"{json.dumps(left)} .. counter .. {json.dumps(right)}" if marker else json.dumps(body)
    lines += [
        "local counter = 0",
        "request = function()",
        "  counter = counter + 1",
        f"  return wrk.format(nil, {json.dumps(path)}, nil, {lua_body})",
        "end",
    ]
    script = directory / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n" + WRK_DONE)
    return script


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(server: Server, script: Path, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run (one thread, so that the load generator takes as little CPU as it can)."""
    done = subprocess.run(
        [
            "wrk",
            *("-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s"),
            *("-s", str(script)),
            f"{server.base}/",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = (
        sum(result[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors"))
        + result["timeouts"]
    )
    return result


def python_for_workers() -> str:
    return str(MAIN_PYTHON) if MAIN_PYTHON.exists() else sys.executable
