"""Microseconds per request through the WSGI application itself: no sockets, no gunicorn, no wrk.

Each variant (a settings module + ``BENCH_DROP``, or the bare app) lives in its own worker process
(settings are per process). The driver keeps every worker alive and asks them for samples in turn,
round after round, so the variants are compared side by side in time like the other benchmarks.
A worker answers ``<count>`` on stdin with the seconds ``count`` requests took; its own stdout (the
JSON request log) goes to a file, as a server's would.

Run as a worker: ``python benchmarks/_inprocess.py`` with the ``BENCH_*`` environment below.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, MAIN_PYTHON, REPO, median

WALL = os.environ.get("BENCH_CLOCK") == "wall"
"""Samples are CPU seconds of the worker process unless ``BENCH_CLOCK=wall`` (see ``_common.CLOCK``)."""


@dataclass
class Variant:
    name: str
    app: str  # "flagsvc" or "bare"
    env: dict[str, str]


@dataclass
class _Worker:
    variant: Variant
    process: subprocess.Popen[str]

    def ask(self, line: str) -> dict[str, Any]:
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("worker started without pipes")
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"in-process worker {self.variant.name} died")
        data: dict[str, Any] = json.loads(answer)
        if "error" in data:
            raise RuntimeError(f"in-process worker {self.variant.name}: {data['error']}")
        return data


@contextmanager
def workers(variants: list[Variant], base_env: dict[str, str], log_dir: Path) -> Iterator[list[_Worker]]:
    started: list[_Worker] = []
    try:
        for variant in variants:
            env = {
                **base_env,
                **variant.env,
                "BENCH_APP": variant.app,
                "BENCH_LOG": str(log_dir / f"inprocess-{variant.name}.log"),
                "PYTHONPATH": f"{REPO}{os.pathsep}{BENCH_DIR}",
            }
            process = subprocess.Popen(
                [str(MAIN_PYTHON), str(Path(__file__).resolve())],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(log_dir / f"inprocess-{variant.name}.err").open("w"),
                text=True,
            )
            started.append(_Worker(variant, process))
        for worker in started:
            worker.ask("ready")
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None and worker.process.stdin is not None:
                worker.process.stdin.close()
                try:
                    worker.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.process.kill()


def measure(
    variants: list[Variant],
    base_env: dict[str, str],
    log_dir: Path,
    *,
    requests_per_sample: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Microseconds per request of each variant, one sample per round, round-robin."""
    samples: dict[str, list[float]] = {variant.name: [] for variant in variants}
    with workers(variants, base_env, log_dir) as running:
        for worker in running:
            worker.ask(str(max(50, requests_per_sample // 4)))  # warm-up
        for _ in range(rounds):
            for worker in running:
                seconds = worker.ask(str(requests_per_sample))["seconds"]
                samples[worker.variant.name].append(seconds / requests_per_sample * 1e6)
    return samples


def micro(variant: Variant, base_env: dict[str, str], log_dir: Path, rounds: int) -> dict[str, Any]:
    """``_micro`` in a worker of ``variant`` (the full service)."""
    with workers([variant], base_env, log_dir) as running:
        return dict(running[0].ask(f"micro {rounds}")["micro"])


def profile(variant: Variant, base_env: dict[str, str], log_dir: Path, requests: int, top: int = 30) -> str:
    """cProfile of ``requests`` requests of one variant: the functions with the most own time."""
    import pstats

    target = log_dir / f"profile-{variant.name.replace(' ', '_')}.prof"
    with workers([variant], base_env, log_dir) as running:
        running[0].ask(str(max(50, requests // 4)))
        running[0].ask(f"profile {requests} {target}")
    buffer = io.StringIO()
    stats = pstats.Stats(str(target), stream=buffer)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: median(values) for name, values in samples.items()}


# --- the worker --------------------------------------------------------------------------------


def _application() -> Any:
    if os.environ["BENCH_APP"] == "bare":
        import bare_app

        return bare_app.application
    from django.core.wsgi import get_wsgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
    return get_wsgi_application()


def _environ(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _micro(rounds: int) -> dict[str, dict[str, float]]:
    """Each piece of the request path alone, timed in a loop: what removing or fixing it saves.

    Runs inside a worker of the full service (Django set up, the benchmark database, a real token).
    Names say which layer a piece belongs to; each has a cheaper alternative next to it for scale.
    """
    import logging

    from django.conf import settings
    from flagsvc_sdk.engine import evaluate, validate_user
    from rest_framework.renderers import JSONRenderer

    from evaluation import metrics
    from evaluation.cache import RULESETS
    from flagsvc.logging import JsonFormatter, redact
    from tenancy.authentication import ApiClientJWTAuthentication
    from tenancy.selectors import active_tenant_by_slug

    headers = json.loads(os.environ.get("BENCH_HEADERS", "{}"))
    raw_token = headers.get("Authorization", "").removeprefix("Bearer ")
    tenant = active_tenant_by_slug(headers.get("X-Tenant-ID", "acme"))
    user = {"id": "u-42", "attributes": {"country": "DE", "plan": "pro"}}
    access = logging.getLogger("flagsvc.access")
    extra = {
        "method": "POST",
        "path": "/v1/evaluate",
        "status": 200,
        "duration_ms": 1.234,
        "request_id": "0123456789abcdef0123456789abcdef",
        "tenant": "acme",
        "actor": "client:abcdefgh",
    }
    record = access.makeRecord("flagsvc.access", logging.INFO, __file__, 0, "request", (), None, extra=extra)
    formatter = JsonFormatter()
    line = formatter.format(record)
    payload = json.loads(line)
    ruleset = RULESETS.get(tenant)
    answer = evaluate(ruleset, "simple", user).to_dict()
    renderer = JSONRenderer()
    evaluations_child = metrics.EVALUATIONS.labels(reason="PERCENTAGE_ROLLOUT")
    latency_child = metrics.EVALUATION_LATENCY.labels(route="evaluate")
    cache: dict[str, object] = {raw_token: object()}
    meta = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    class _Request:
        META = meta

    authenticator = ApiClientJWTAuthentication()
    import jwt

    pieces: dict[str, Any] = {
        "auth: ApiClientJWTAuthentication.authenticate (JWT + client check)": lambda: (
            authenticator.authenticate(_Request())  # type: ignore[arg-type]
        ),
        "auth: PyJWT jwt.decode alone (HS256)": lambda: jwt.decode(
            raw_token, settings.JWT_SECRET, algorithms=["HS256"]
        ),
        "auth: dict lookup of an already verified token (a cache)": lambda: cache.get(raw_token),
        "log: access_logger.log(...) (format + redact + write)": lambda: access.info("request", extra=extra),
        "log: JsonFormatter.format(record)": lambda: formatter.format(record),
        "log: redact(line) alone": lambda: redact(line),
        "log: json.dumps(payload) alone": lambda: json.dumps(payload),
        "metrics: EVALUATIONS.labels(reason=...).inc()": lambda: metrics.EVALUATIONS.labels(
            reason="PERCENTAGE_ROLLOUT"
        ).inc(),
        "metrics: EVALUATIONS child bound once, .inc()": lambda: evaluations_child.inc(),
        "metrics: EVALUATION_LATENCY.labels(route=...).observe()": lambda: metrics.EVALUATION_LATENCY.labels(
            route="evaluate"
        ).observe(0.00002),
        "metrics: EVALUATION_LATENCY child bound once, .observe()": lambda: latency_child.observe(0.00002),
        "tenant: active_tenant_by_slug (TTL cache)": lambda: active_tenant_by_slug("acme"),
        "engine: RULESETS.get(tenant)": lambda: RULESETS.get(tenant),
        "engine: validate_user(user)": lambda: validate_user(user),
        "engine: evaluate(...).to_dict()": lambda: evaluate(ruleset, "simple", user).to_dict(),
        "render: DRF JSONRenderer().render(answer)": lambda: renderer.render(answer),
        "render: json.dumps(answer).encode()": lambda: json.dumps(answer).encode(),
    }
    results: dict[str, dict[str, float]] = {}
    samples: dict[str, list[float]] = {name: [] for name in pieces}
    loops = 500
    for fn in pieces.values():
        fn()
    for _ in range(rounds):
        for name, fn in pieces.items():
            started = time.perf_counter() if WALL else time.process_time()
            for _ in range(loops):
                fn()
            elapsed = (time.perf_counter() if WALL else time.process_time()) - started
            samples[name].append(elapsed / loops * 1e6)
    for name, values in samples.items():
        results[name] = {"median_us": median(values), "min_us": min(values)}
    return results


def _serve(out: TextIO) -> None:
    application = _application()
    path = os.environ["BENCH_PATH"]
    template = os.environ["BENCH_BODY"]
    headers = json.loads(os.environ.get("BENCH_HEADERS", "{}"))
    counter = 0
    status_seen: list[str] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> None:
        status_seen.append(status)

    def one() -> bytes:
        nonlocal counter
        counter += 1
        body = template.replace("{n}", str(counter)).encode()
        status_seen.clear()
        result = application(_environ(path, body, headers), start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    first = one()
    if not status_seen or not status_seen[0].startswith("200"):
        out.write(json.dumps({"error": f"{status_seen} {first[:300]!r}"}) + "\n")
        out.flush()
        return
    for line in sys.stdin:
        command = line.strip()
        if command == "ready":
            out.write(json.dumps({"ok": True, "sample": json.loads(first)}) + "\n")
            out.flush()
            continue
        if command.startswith("micro "):
            out.write(json.dumps({"micro": _micro(int(command.split()[1]))}) + "\n")
            out.flush()
            continue
        if command.startswith("profile "):
            _, count_text, target = command.split(" ", 2)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(int(count_text)):
                one()
            profiler.disable()
            profiler.dump_stats(target)
            out.write(json.dumps({"profile": target}) + "\n")
            out.flush()
            continue
        count = int(command)
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            one()
        wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
        if not status_seen[0].startswith("200"):
            out.write(json.dumps({"error": f"status {status_seen[0]}"}) + "\n")
        else:
            out.write(json.dumps({"seconds": wall if WALL else cpu, "wall": wall, "cpu": cpu}) + "\n")
        out.flush()


def _worker() -> None:
    # Answers go to the real stdout; everything the application prints (its JSON request log)
    # goes to BENCH_LOG, as a server's output would go to its log.
    out = os.fdopen(os.dup(1), "w")
    log = open(os.environ["BENCH_LOG"], "a")  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    sys.stdout = log
    try:
        _serve(out)
    except Exception as exc:
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        raise


if __name__ == "__main__":
    _worker()
