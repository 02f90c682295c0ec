"""Benchmark-only stand-ins for the layers ``settings_layers`` takes out (see its docstring).

Never used by the service: only ``DJANGO_SETTINGS_MODULE=settings_layers`` with ``BENCH_DROP`` set
installs them.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request


class FixedPrincipalAuthentication(BaseAuthentication):
    """Every request is the API client of the tenant it names: no JWT decode, no client check."""

    reads_only_request_meta = True  # the fast lane may call it (tenancy.api.fast_lane)

    def authenticate(self, request: Request) -> tuple[Any, None]:
        from tenancy.principals import ApiPrincipal

        return (
            ApiPrincipal(
                client_id="benchmark",
                tenant_slug=request.META.get("HTTP_X_TENANT_ID", ""),
                scopes=frozenset({"evaluate", "flags:read"}),
                token_id="benchmark",
            ),
            None,
        )


class _NoMetric:
    """Takes the calls our Prometheus series get on the hot path and does nothing."""

    def labels(self, *args: Any, **kwargs: Any) -> _NoMetric:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None

    def set(self, value: float) -> None:
        return None


class LayerStubsConfig(AppConfig):
    name = "layer_stubs"
    label = "layer_stubs"
    verbose_name = "Benchmark layer stand-ins"

    def ready(self) -> None:
        drop = set(getattr(settings, "BENCH_DROP", ()))
        if "engine_metrics" in drop:
            from evaluation import metrics

            for name in ("EVALUATIONS", "EVALUATION_LATENCY", "CACHE_HITS", "CACHE_MISSES"):
                setattr(metrics, name, _NoMetric())
        if "tenant" in drop:
            from tenancy.api import base
            from tenancy.models import Tenant

            tenants: dict[str, Tenant] = {}

            def constant_tenant(request: Request, principal: Any) -> Tenant:
                slug = principal.tenant_slug
                tenant = tenants.get(slug)
                if tenant is None:
                    tenant = tenants[slug] = Tenant.objects.get(slug=slug)
                return tenant

            base.resolve_tenant = constant_tenant
