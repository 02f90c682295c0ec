"""The `/v1` rate limits: buckets named here, counted in the database (tenancy.ratelimits).

DRF's own throttles keep a list of timestamps in the cache and write it back (read, then write):
with the per-process memory cache every worker counted alone, and even on Redis two workers could
both pass the last slot. These count with one atomic statement that every process shares.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from kernel.client_address import client_address
from tenancy.principals import ApiPrincipal
from tenancy.ratelimits import rate_limit_hit

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"60/min"` → (60, 60): how many requests per how many seconds (DRF's notation)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


class CountedRateThrottle(BaseThrottle):
    """At most `rate` attempts per bucket (a leaky bucket); a subclass names a request's bucket, or None."""

    scope: ClassVar[str]
    rate: str | None = None

    def __init__(self) -> None:
        rates = cast(dict[str, dict[str, str]], settings.REST_FRAMEWORK)["DEFAULT_THROTTLE_RATES"]
        rate = self.rate or rates[self.scope]
        self.num_requests, self.duration = parse_rate(rate)
        self._wait: int | None = None

    def bucket(self, request: Request, view: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        bucket = self.bucket(request, view)
        if bucket is None:
            return True
        decision = rate_limit_hit(f"{self.scope}:{bucket}", self.num_requests, self.duration)
        if decision.allowed:
            return True
        self._wait = decision.retry_after
        return False

    def wait(self) -> float | None:
        return self._wait


class WriteRateThrottle(CountedRateThrottle):
    """Per API client, on unsafe methods only; evaluation routes carry no throttle at all."""

    scope = "write"

    def bucket(self, request: Request, view: Any) -> str | None:
        if request.method in SAFE_METHODS:
            return None
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return None
        return f"{principal.tenant_slug}:{principal.client_id}"


class TokenRateThrottle(CountedRateThrottle):
    """Per client address (never a header the client chose, unless a trusted proxy wrote it)."""

    scope = "token"

    def bucket(self, request: Request, view: Any) -> str | None:
        return client_address(request)


class OfrepRateThrottle(CountedRateThrottle):
    """Per API client on the OFREP routes, when `RATE_LIMIT_OFREP` names a rate.

    Off by default, as `/v1/evaluate` carries none: counting costs a database statement per
    evaluation. An operator who serves OFREP clients it does not trust sets it (e.g. `6000/min`).
    """

    scope = "ofrep"

    def __init__(self) -> None:
        rates = cast(dict[str, dict[str, str]], settings.REST_FRAMEWORK)["DEFAULT_THROTTLE_RATES"]
        self.enabled = bool(self.rate or rates.get(self.scope))
        if self.enabled:
            super().__init__()
        self._wait = None

    def bucket(self, request: Request, view: Any) -> str | None:
        principal = request.user
        if not self.enabled or not isinstance(principal, ApiPrincipal):
            return None
        return f"{principal.tenant_slug}:{principal.client_id}"
