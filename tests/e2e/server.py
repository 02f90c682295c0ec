"""Start the real service (gunicorn, our config) as a child process on a database of the test's own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


E2E_SNAPSHOT_SIGNING_KEY = "ZTJlLW9ubHktc25hcHNob3Qtc2lnbmluZy1rZXkhISE"
"""base64url of the 32 bytes `e2e-only-snapshot-signing-key!!!`."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "JWT_SECRET": "e2e-jwt-secret",
            "SECRET_KEY": "e2e-secret-key",
            # A test key, as production has one of its own (evaluation.snapshot_keys).
            "SNAPSHOT_SIGNING_KEY": E2E_SNAPSHOT_SIGNING_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


@dataclass
class Server:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    events_port: int | None = None
    """Where gunicorn relays event streams (flagsvc.stream_relay); None: its own port, no relay."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagsvc.wsgi"]

    def start(self, log_path: Path, workers: int = 1, threads: int = 4) -> Server:
        self.log_path = log_path
        env = {
            **self.env,
            "PORT": str(self.port),
            "EVENTS_PORT": str(self.events_port or self.port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy in 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status, response_headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw = error.read()
            status, response_headers = error.code, dict(error.headers)
        content_type = response_headers.get("Content-Type", "")
        parsed = json.loads(raw) if raw and content_type.startswith("application/json") else raw.decode()
        return status, response_headers, parsed


DEFAULT_SCOPES = ("flags:read", "flags:write", "segments:read", "segments:write", "evaluate", "audit:read")


class StreamServer(Server):
    """The stream process (`python -m flagsvc.stream`: Django's ASGI application under uvicorn)."""

    def command(self) -> list[str]:
        return [PYTHON, "-m", "flagsvc.stream"]


def bootstrap_tenant(
    env: dict[str, str], tenant: str = "acme", scopes: tuple[str, ...] = DEFAULT_SCOPES
) -> dict[str, Any]:
    manage(env, "create_tenant", tenant)
    arguments: list[str] = []
    for scope in scopes:
        arguments += ["--scope", scope]
    return dict(json.loads(manage(env, "create_api_client", "--tenant", tenant, "--json", *arguments)))
