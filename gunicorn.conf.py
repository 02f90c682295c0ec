"""gunicorn settings, read from the environment (README, Configuration). Used by `make run` and Docker."""

from __future__ import annotations

import json
import multiprocessing
import os
from typing import Any

bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
workers = int(os.environ.get("WEB_CONCURRENCY", str(min(4, multiprocessing.cpu_count() * 2))))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
limit_request_line = 8190
limit_request_fields = 100
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips

# The application writes one JSON line per request itself (flagsvc.middleware); gunicorn's own
# access log is off by default so a request is not logged twice. GUNICORN_ACCESS_LOG=1 turns on a
# JSON access log from gunicorn too.
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG") == "1" else None
access_log_format = json.dumps(
    {
        "timestamp": "%(t)s",
        "level": "INFO",
        "message": "access",
        "method": "%(m)s",
        "path": "%(U)s",
        "status": "%(s)s",
        "duration_ms": "%(M)s",
        "request_id": "%({x-request-id}o)s",
    }
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "flagsvc.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
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
        worker.log.info("rules cache warm for %d tenant(s)", count)
    except Exception:
        worker.log.exception("could not warm the rules cache; /readyz will retry")
