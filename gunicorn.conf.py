"""gunicorn settings, read from the environment (README, Configuration; docs/operations.md).

Used by `make run`, Docker and the end-to-end tests. gthread workers: each worker is one process with
its own compiled-ruleset cache, serving `GUNICORN_THREADS` requests at a time.
"""

from __future__ import annotations

import gc
import glob
import multiprocessing
import os
import shutil
import tempfile
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# One worker per core, two threads each: the best throughput and p99 measured on 2 cores
# (benchmarks/RESULTS.md, "Workers and threads").
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count())
threads = _int("GUNICORN_THREADS", 2)
# gthread, with each request read whole by the worker's event loop before a thread serves it, and
# gunicorn's own errors in the API's error shape (flagsvc/http_worker.py; docs/operations.md).
worker_class = "flagsvc.http_worker.BufferingThreadWorker"
# Connections a worker holds at once, requests being read included (each up to API_MAX_BODY_BYTES).
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 250)
# A worker silent for `timeout` seconds is killed and replaced; on SIGTERM, workers stop accepting,
# finish what they are serving for up to `graceful_timeout` seconds, then exit.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0)
limit_request_line = 8190
limit_request_fields = 100
# Not preloaded: each worker imports the app itself, so no database connection or metric file is
# shared across a fork.
preload_app = False
# Our own proxies: the app's TRUSTED_PROXIES (kernel.client_address) unless gunicorn is told otherwise.
forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS") or os.environ.get("TRUSTED_PROXIES") or "127.0.0.1"
)
proxy_allow_ips = forwarded_allow_ips
# The heartbeat file lives in memory where there is /dev/shm (containers: overlay file systems stall).
_SHM = "/dev/shm"  # noqa: S108 - gunicorn creates its heartbeat file there with mkstemp
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (_SHM if os.path.isdir(_SHM) else None)
# gunicorn >= 25 opens a control socket under $HOME by default; opt in with a path.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

# --- Metrics across workers -----------------------------------------------------------------------
# Each worker counts in its own memory; with several workers, a scrape of /metrics would see one
# worker's numbers. prometheus_client's multiprocess mode sums them through files in a directory:
# PROMETHEUS_MULTIPROC_DIR if set, otherwise a fresh temporary one when there is more than one worker.
_OWN_METRICS_DIR = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and workers > 1:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flagsvc-metrics-")
    _OWN_METRICS_DIR = True


def on_starting(server: Any) -> None:
    """Counters from an earlier run must not add up with this one's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# --- Logs: JSON lines on stdout -----------------------------------------------------------------------
# The application writes one JSON line per request itself (flagsvc.middleware), so gunicorn's own
# access log is off unless GUNICORN_ACCESS_LOG=1; then it is JSON too, without query strings or headers.
ACCESS_LOG = os.environ.get("GUNICORN_ACCESS_LOG") == "1"


class JsonAccessLogger(_GunicornLogger):
    """gunicorn's logger, with an access line made of fields rather than an Apache-style string."""

    @property
    def access_log_enabled(self) -> bool:
        return ACCESS_LOG

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not ACCESS_LOG:
            return
        headers = dict((name.lower(), value) for name, value in (resp.headers or []))
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        self.access_log.info(
            "access",
            extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": int(status) if str(status).isdigit() else status,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "request_id": headers.get("x-request-id"),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "bytes": getattr(resp, "sent", None),
            },
        )


logger_class = JsonAccessLogger
accesslog = None  # the handlers come from logconfig_dict below
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "flagsvc.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
}


def post_worker_init(worker: Any) -> None:
    """Warm every tenant's compiled ruleset before the worker takes traffic."""
    from django.conf import settings

    if not settings.RULESET_WARM_ON_START:
        return
    from evaluation.cache import RULESETS

    try:
        count = RULESETS.warm_all()
        # The compiled rulesets live as long as the worker: keep them out of every future GC pass.
        gc.freeze()
        worker.log.info("rules cache warm for %d tenant(s)", count)
    except Exception:
        worker.log.exception("could not warm the rules cache; /readyz will retry")


def worker_exit(server: Any, worker: Any) -> None:
    """Write the evaluations this worker counted and has not flushed yet (usage/buffer.py)."""
    try:
        from usage.buffer import USAGE

        USAGE.stop()
    except Exception:
        worker.log.exception("could not flush the usage counts at exit")
