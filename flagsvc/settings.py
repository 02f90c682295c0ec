"""Django settings, twelve-factor: every value that differs between machines comes from the environment.

See README "Configuration" for the variables. `flagsvc.env` is the only module that reads them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url

from flagsvc import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.env_bool("DEBUG", default=False)
SECRET_KEY = env.require_secret("SECRET_KEY", debug=DEBUG, dev_default=env.DEV_SECRET_KEY)
JWT_SECRET = env.require_secret("JWT_SECRET", debug=DEBUG, dev_default=env.DEV_JWT_SECRET)
if JWT_SECRET == env.DEV_JWT_SECRET:
    print(
        "WARNING: JWT_SECRET not set, using the INSECURE development default (DEBUG only).",
        file=sys.stderr,
    )

# Earlier token keys that still verify (never sign), comma-separated: rotate JWT_SECRET without logging
# every client out (tenancy.token_keys, docs/operations.md).
JWT_PREVIOUS_SECRETS = env.env_list("JWT_PREVIOUS_SECRETS", [])

ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
HOST = env.env_str("HOST", "127.0.0.1")  # where gunicorn.conf.py binds (GUNICORN_BIND overrides both)
PORT = env.env_int("PORT", 8000)
CSRF_TRUSTED_ORIGINS = env.env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind HTTPS (docs/operations.md, "Behind HTTPS"): each is Django's setting of the same name, off by
# default so `make run` works on plain http. `SECURE_PROXY_SSL_HEADER` names the header the TLS proxy sets
# to `https` (and strips from what clients send), e.g. `X-Forwarded-Proto`.
SECURE_SSL_REDIRECT = env.env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.env_bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.env_bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.env_bool("CSRF_COOKIE_SECURE", default=False)
SECURE_PROXY_SSL_HEADER = env.env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
# Probes and scrapers speak plain http to the process: a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Django's deploy checks look for its own CSRF and X-Frame-Options middleware by name; ours are subclasses
# that skip `/v1` (flagsvc.middleware), and flagsvc.checks makes sure they are installed instead.
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W003"]

INSTALLED_APPS = [
    "flagsvc.apps.FlagsvcAdminConfig",  # django.contrib.admin with our site (flagsvc.admin_site)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenancy",
    "audit",
    "segments",
    "flags",
    "evaluation",
    "webhooks",
    "usage",
]

MIDDLEWARE = [
    "flagsvc.middleware.RequestContextMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "flagsvc.middleware.WhiteNoiseMiddleware",  # browser-only: skips /v1, as do those marked below
    "flagsvc.middleware.ApiBodyLimitMiddleware",
    "flagsvc.middleware.SessionMiddleware",  # browser-only
    "flagsvc.middleware.CommonMiddleware",  # also checks the Host against ALLOWED_HOSTS (not on probes)
    "flagsvc.middleware.CsrfViewMiddleware",  # browser-only: /v1 takes bearer tokens, never cookies
    "flagsvc.middleware.AuthenticationMiddleware",  # browser-only
    "flagsvc.middleware.AdminActorMiddleware",
    "flagsvc.middleware.MessageMiddleware",  # browser-only
    "flagsvc.middleware.XFrameOptionsMiddleware",  # browser-only
    "flagsvc.middleware.PrometheusAfterMiddleware",  # django-prometheus's, cheaper labels
]

ROOT_URLCONF = "flagsvc.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "flagsvc.wsgi.application"

DATABASE_URL = env.env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": env.env_str("SQLITE_TEST_NAME", "") or None}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"

REDIS_URL = env.env_str("REDIS_URL", "")
REDIS_KEY_PREFIX = env.env_str("REDIS_KEY_PREFIX", "flagsvc")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX,
            # Redis down must not take the API down: cache reads miss, writes are dropped (and logged),
            # rate limits fail open and the ruleset version is read from the database (ADR 0002).
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The admin's one date format for the dates Django renders itself (kernel.timefmt, flagsvc/formats).
FORMAT_MODULE_PATH = ["flagsvc.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: anything larger is refused with 413 before it is read (the gunicorn worker,
# flagsvc.http_worker, for every path; flagsvc.middleware under /v1 on any other server).
API_MAX_BODY_BYTES = env.env_int("API_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# The gunicorn worker (flagsvc.http_worker) gives a request this long, from its first byte, to
# arrive whole; slower ones get 408.
REQUEST_READ_TIMEOUT_SECONDS = env.env_float("REQUEST_READ_TIMEOUT_SECONDS", 10.0)
# A preview that runs longer than this is stopped with 503 (evaluation.services.preview).
PREVIEW_DEADLINE_SECONDS = env.env_float("PREVIEW_DEADLINE_SECONDS", 10.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenancy.authentication.ApiClientJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.HasRouteScope"],
    "DEFAULT_PARSER_CLASSES": ["kernel.json_input.JsonBodyParser"],  # the one JSON reader
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "kernel.pagination.LimitOffsetPage",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "kernel.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "tenancy.schema.FlagsvcAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "write": env.env_str("RATE_LIMIT_WRITES", "600/min"),
        "token": env.env_str("RATE_LIMIT_TOKEN", "60/min"),
        # Per API client on /ofrep/v1 (tenancy.api.throttles.OfrepRateThrottle); empty: no limit.
        "ofrep": env.env_str("RATE_LIMIT_OFREP", ""),
    },
}

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.env_int("JWT_TTL_SECONDS", 3600)),
    "USER_ID_CLAIM": "sub",
    "LEEWAY": 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "flagsvc API",
    "DESCRIPTION": "Multi-tenant feature flags: CRUD for flags and segments, evaluation, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EvaluationReasonEnum": "evaluation.api.views.REASONS",
        "OpenFeatureReasonEnum": "evaluation.api.ofrep.OPENFEATURE_REASONS",
        "OfrepErrorCodeEnum": "evaluation.api.ofrep.OFREP_ERROR_CODES",
        "OfrepFlagNotFoundCodeEnum": "evaluation.api.ofrep.FLAG_NOT_FOUND_CODE",
        "EvaluationErrorCodeEnum": "evaluation.api.views.EVALUATION_ERROR_CODES",
        "BulkEntryErrorCodeEnum": "evaluation.api.views.BULK_ERROR_CODES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tenancy.schema.add_tenant_header",
        "tenancy.schema.canonical_paths",
        "tenancy.schema.document_errors_and_headers",
    ],
}

# How often a process asks the shared store whether a tenant's ruleset changed (seconds).
RULESET_CHECK_INTERVAL = env.env_float("RULESET_CHECK_INTERVAL", 0.5)
# How long an API client's "still active" answer is trusted before it is read again (seconds).
API_CLIENT_CHECK_INTERVAL = env.env_float("API_CLIENT_CHECK_INTERVAL", 10.0)
RULESET_WARM_ON_START = env.env_bool("RULESET_WARM_ON_START", default=True)
# At most this many compiled flags (summed over tenants, a tenant counting at least 1) are kept per
# process; past it the least recently used tenants are dropped and compiled again on demand. 0: no cap.
# Memory per 1,000 compiled flags: docs/operations.md ("Memory of compiled rulesets").
RULESET_CACHE_MAX_FLAGS = env.env_int("RULESET_CACHE_MAX_FLAGS", 50_000)
# Label sets a process binds for the per-flag and per-rule evaluation series together (issue 15,
# item 5); past it new ones are counted under `_other` (docs/operations.md, Metrics).
METRICS_FLAG_LABELS_MAX = env.env_int("METRICS_FLAG_LABELS_MAX", 5_000)
# Traces (docs/operations.md, Traces): off unless asked for; the OTLP exporter reads the standard
# OTEL_EXPORTER_OTLP_* variables itself.
# OTEL_ENABLED decides when set (0 turns it off even with an endpoint); otherwise an endpoint turns it on.
OTEL_ENABLED = env.env_bool(
    "OTEL_ENABLED",
    default=bool(
        env.env_str("OTEL_EXPORTER_OTLP_ENDPOINT") or env.env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ),
)
OTEL_SERVICE_NAME = env.env_str("OTEL_SERVICE_NAME", "flagsvc")
# Without Redis, where each tenant's last known rulesets and access state are kept for a process that
# starts during a database outage (ADR 0007). Private to the service user.
LAST_KNOWN_DIR = env.env_str("LAST_KNOWN_DIR", "") or str(
    Path(tempfile.gettempdir()) / f"flagsvc-last-known-{os.geteuid()}"
)
# Change events (api.md, Change events; ADR 0012). Outbox rows older than the retention are pruned by
# the worker (audit.outbox.prune_events); a stream or poll resuming from before it gets `reset`.
EVENT_RETENTION_DAYS = env.env_float("EVENT_RETENTION_DAYS", 7.0)
EVENT_PRUNE_BATCH = env.env_int("EVENT_PRUNE_BATCH", 1000)
# A comment line on every open stream at least this often (api.md: at least every 15 s).
EVENTS_KEEPALIVE_SECONDS = env.env_float("EVENTS_KEEPALIVE_SECONDS", 15.0)
# How often a stream process reads the outbox of the tenants it serves: the delivery bound without
# Redis; with Redis (pub/sub wakes it at once) only the safety net for a lost notification.
EVENTS_POLL_INTERVAL = env.env_float("EVENTS_POLL_INTERVAL", 0.25)
EVENTS_POLL_INTERVAL_WITH_REDIS = env.env_float("EVENTS_POLL_INTERVAL_WITH_REDIS", 5.0)
# The stream process (`python -m flagsvc.stream`, ADR 0012): where it listens, its listen backlog
# (a thousand subscribers may connect at once) and how long open streams get on SIGTERM.
EVENTS_HOST = env.env_str("EVENTS_HOST", HOST)
EVENTS_PORT = env.env_int("EVENTS_PORT", PORT + 1)
EVENTS_BACKLOG = env.env_int("EVENTS_BACKLOG", 2048)
# Event streams asked of gunicorn's port that each worker process relays to the stream process at once
# (flagsvc.stream_relay; a thread each, none of the request threads); 0 turns relaying off (406 there).
EVENTS_RELAY_MAX = env.env_int("EVENTS_RELAY_MAX", 200)
EVENTS_GRACEFUL_TIMEOUT = env.env_int("EVENTS_GRACEFUL_TIMEOUT", 3)
# Requests the stream process starts at once (each takes a thread and a database connection until
# its stream begins): keep it well under PostgreSQL's max_connections.
EVENTS_STARTING_REQUESTS = env.env_int("EVENTS_STARTING_REQUESTS", 8)
# Whether gunicorn (WSGI) streams too, a thread and a connection per subscriber: off, since a few
# subscribers would take every thread evaluation needs (406 there); only the benchmark turns it on.
EVENTS_STREAM_ON_WSGI = env.env_bool("EVENTS_STREAM_ON_WSGI", default=False)
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# An `Idempotency-Key` claimed by a request that never finished (its worker died) is free again after this.
IDEMPOTENCY_IN_FLIGHT_SECONDS = 120

# Signed snapshots (api.md, Snapshot; ADR 0017; evaluation.snapshot_keys reads these). The private key
# as base64url of its raw 32 bytes or a PEM (or a file holding either), its key id (default: derived
# from the public key), and more public keys to publish for a rotation: `<kid>:<base64url>`, comma-separated.
SNAPSHOT_SIGNING_KEY = env.env_str("SNAPSHOT_SIGNING_KEY", "")
SNAPSHOT_SIGNING_KEY_FILE = env.env_str("SNAPSHOT_SIGNING_KEY_FILE", "")
SNAPSHOT_SIGNING_KEY_ID = env.env_str("SNAPSHOT_SIGNING_KEY_ID", "")
SNAPSHOT_PUBLISHED_KEYS = env.env_list("SNAPSHOT_PUBLISHED_KEYS", [])
# A snapshot body larger than this is served and logged as a warning, once per version and process.
SNAPSHOT_WARN_BYTES = env.env_int("SNAPSHOT_WARN_BYTES", 5_000_000)
# The signed bodies (and their gzip forms) each process keeps, newest per tenant, least recently used out.
SNAPSHOT_CACHE_BYTES = env.env_int("SNAPSHOT_CACHE_BYTES", 128 * 1024 * 1024)

# Proxies we run (addresses or CIDRs): only a request from one of them may name its client in
# `X-Forwarded-For` (kernel.client_address). Default none: the peer address is the client.
TRUSTED_PROXIES = env.env_networks("TRUSTED_PROXIES")

LOG_LEVEL = env.env_str("LOG_LEVEL", "INFO")
# One JSON object per line on stdout, Python warnings included (flagsvc.logging).
LOGGING_CONFIG = "flagsvc.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "flagsvc.logging.JsonFormatter"}},
    "filters": {"expected_refusal": {"()": "flagsvc.logging.ExpectedRefusal"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": sys.stdout, "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR", "handlers": ["stdout"], "propagate": False},
        "django.server": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "django.security.DisallowedHost": {
            "level": "WARNING",
            "handlers": ["stdout"],
            "filters": ["expected_refusal"],
            "propagate": False,
        },
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Webhooks and the worker (api.md, Webhooks; ADR 0013) ------------------------------------------
# A webhook URL on a loopback, private or link-local address is refused unless this is set.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Fernet keys (comma-separated, the first encrypts) for the stored signing secrets; unset: from SECRET_KEY.
WEBHOOK_SECRET_KEYS = env.env_list("WEBHOOK_SECRET_KEYS", [])
WEBHOOK_TIMEOUT_SECONDS = env.env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
# A PEM file of extra CA certificates trusted for https webhook receivers (a private CA); the public
# CAs stay trusted and certificates are always verified against the URL's name.
WEBHOOK_CA_BUNDLE = env.env_str("WEBHOOK_CA_BUNDLE", "")
WEBHOOK_RETRY_HOURS = env.env_float("WEBHOOK_RETRY_HOURS", 24.0)
WEBHOOK_BACKOFF_BASE_SECONDS = env.env_float("WEBHOOK_BACKOFF_BASE_SECONDS", 10.0)
WEBHOOK_BACKOFF_MAX_SECONDS = env.env_float("WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0)
# How long a claimed attempt is this worker's; longer than any attempt can take (timeouts per phase).
WEBHOOK_LEASE_SECONDS = env.env_float("WEBHOOK_LEASE_SECONDS", 60.0)
WORKER_POLL_SECONDS = env.env_float("WORKER_POLL_SECONDS", 0.5)
WORKER_PRUNE_INTERVAL_SECONDS = env.env_float("WORKER_PRUNE_INTERVAL_SECONDS", 3600.0)
# Settled deliveries (succeeded or failed) leave the delivery log this long after their last attempt.
WEBHOOK_DELIVERY_RETENTION_DAYS = env.env_float("WEBHOOK_DELIVERY_RETENTION_DAYS", 30.0)

# Usage counting (api.md, Usage and lifecycle; usage/buffer.py) ------------------------------------
# Whether server evaluations are counted at all (usage, staleness); 0 turns counting off: flags then look
# "never evaluated" unless SDKs report (benchmarks/bench_usage_cost.py measures what counting costs).
USAGE_COUNTING = env.env_bool("USAGE_COUNTING", default=True)
# How often each process writes the evaluations it counted; 0 = only when asked (tests).
USAGE_FLUSH_SECONDS = env.env_float("USAGE_FLUSH_SECONDS", 5.0)
# Counted rows a process keeps while the database is unavailable; past it the oldest are dropped.
USAGE_MAX_PENDING_COUNTS = env.env_int("USAGE_MAX_PENDING_COUNTS", 100_000)
# How long a batch id is remembered (a repeat within it is not counted twice), and counts are kept.
USAGE_BATCH_RETENTION_HOURS = env.env_float("USAGE_BATCH_RETENTION_HOURS", 48.0)
USAGE_RETENTION_DAYS = env.env_float("USAGE_RETENTION_DAYS", 90.0)
# Retention deletes (usage counts, a purged flag's rows) remove at most this many rows per statement.
RETENTION_BATCH_ROWS = env.env_int("RETENTION_BATCH_ROWS", 1000)
# Purge of archived flags (flags.retention): an archived flag is removed this long after it was archived
# (its audit entries stay, its key stays reserved), at most FLAG_PURGE_BATCH flags per transaction.
FLAG_ARCHIVE_RETENTION_DAYS = env.env_float("FLAG_ARCHIVE_RETENTION_DAYS", 365.0)
FLAG_PURGE_BATCH = env.env_int("FLAG_PURGE_BATCH", 50)
# Staleness (flags.staleness): the N days of "never evaluated N days after creation", "not evaluated
# for N days" and "one variant served to 100 % for N days".
STALE_AFTER_DAYS = env.env_int("STALE_AFTER_DAYS", 30)

# Scheduled rollouts (ADR 0016): a step applied more than this after its time is marked `late`.
ROLLOUT_LATE_SECONDS = env.env_float("ROLLOUT_LATE_SECONDS", 60.0)
