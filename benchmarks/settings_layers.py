"""``flagsvc.settings`` with layers of the request path taken out, to price each layer.

Select it with ``DJANGO_SETTINGS_MODULE=settings_layers`` (``benchmarks/`` on ``PYTHONPATH``) and
name the layers to drop in ``BENCH_DROP`` (comma separated). Nothing here changes server code: the
layers are removed by configuration, and where a layer is code on the hot path (JWT auth, the tenant
lookup, our own Prometheus series) by the stand-ins of ``layer_stubs``, a benchmark-only app.

- ``logging``: the per-request JSON access line (logger ``flagsvc.access``) is not emitted.
- ``prometheus_mw``: django-prometheus' before/after middleware removed.
- ``engine_metrics``: our evaluation counters and latency histogram become no-ops.
- ``metrics``: both of the above.
- ``auth``: JWT verification and the API-client check replaced by a fixed principal.
- ``tenant``: ``X-Tenant-ID`` resolution (header check + cached tenant lookup) replaced by a
  constant tenant.
- ``django_mw``: the Django middleware an API call does not need (security, WhiteNoise, sessions,
  common, CSRF, auth, admin actor, messages, clickjacking) removed; request id, body limit and
  metrics middleware stay.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from flagsvc import settings as _base
from flagsvc.settings import *  # noqa: F403

KNOWN = {"logging", "prometheus_mw", "engine_metrics", "metrics", "auth", "tenant", "django_mw"}
DROP = {name.strip() for name in os.environ.get("BENCH_DROP", "").split(",") if name.strip()}
if DROP - KNOWN:
    raise ImproperlyConfigured(f"BENCH_DROP: unknown layer(s) {sorted(DROP - KNOWN)}; know {KNOWN}")
if "metrics" in DROP:
    DROP |= {"prometheus_mw", "engine_metrics"}

_PROMETHEUS = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "flagsvc.middleware.PrometheusAfterMiddleware",
}
_API_NEEDS = {"flagsvc.middleware.RequestContextMiddleware", "flagsvc.middleware.ApiBodyLimitMiddleware"}

MIDDLEWARE = list(_base.MIDDLEWARE)
if "prometheus_mw" in DROP:
    MIDDLEWARE = [m for m in MIDDLEWARE if m not in _PROMETHEUS]
if "django_mw" in DROP:
    MIDDLEWARE = [m for m in MIDDLEWARE if m in _PROMETHEUS | _API_NEEDS]

LOGGING = {**_base.LOGGING, "loggers": dict(_base.LOGGING["loggers"])}
if "logging" in DROP:
    LOGGING["loggers"]["flagsvc.access"] = {"level": "CRITICAL", "handlers": [], "propagate": False}

REST_FRAMEWORK = dict(_base.REST_FRAMEWORK)
if "auth" in DROP:
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = ["layer_stubs.FixedPrincipalAuthentication"]

if DROP & {"engine_metrics", "tenant"}:
    INSTALLED_APPS = [*_base.INSTALLED_APPS, "layer_stubs.LayerStubsConfig"]

BENCH_DROP = sorted(DROP)
