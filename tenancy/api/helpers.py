"""Small pieces every `/v1` view shares: body parsing, versions and ETags, idempotency, throttles."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from flagsvc_sdk.engine import MAX_SAFE_INTEGER
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from flagsvc.errors import Conflict, Invalid
from flagsvc.query_params import query_param
from tenancy.models import IdempotentResponse, Tenant
from tenancy.principals import ApiPrincipal


def json_object(request: Request) -> dict[str, Any]:
    """The body as a dict: JSON that is not an object is a 422, not-JSON a 400 (raised by the parser)."""
    data = request.data
    if not isinstance(data, dict):
        raise Invalid({"body": ["The body must be a JSON object."]})
    return dict(data)


_VERSION_DIGITS = len(str(MAX_SAFE_INTEGER))


def parse_version(raw: Any, source: str) -> int:
    """A version from `If-Match` or a body: a positive integer of at most 2**53 - 1 (no version
    ever gets there); anything else, 8,000 digits or `"²"` included, is a 422 naming `source`."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= MAX_SAFE_INTEGER:
        return raw
    if isinstance(raw, str):
        text = raw.strip().removeprefix("W/").strip('"')
        if text.isascii() and text.isdigit() and len(text) <= _VERSION_DIGITS:
            number = int(text)
            if 0 < number <= MAX_SAFE_INTEGER:
                return number
    raise Invalid({source: ['A version is a positive integer; send If-Match: "<version>".']})


def expected_version(request: Request, body: dict[str, Any] | None = None) -> int | None:
    """`If-Match: "<version>"` or, failing that, `version` in the body (api.md, Flags)."""
    header = request.META.get("HTTP_IF_MATCH")
    if header is not None and header.strip() != "*":
        return parse_version(header, "If-Match")
    if body is not None and body.get("version") is not None:
        return parse_version(body["version"], "version")
    return None


def etag(version: int) -> str:
    return f'"{version}"'


def bool_param(request: Request, name: str) -> bool:
    raw = query_param(request, name)
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise Invalid({name: ["Use true or false."]})


def choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = query_param(request, name)
    if raw is None:
        return None
    if raw not in choices:
        raise Invalid({name: [f"Use one of: {', '.join(choices)}."]})
    return raw


def text_param(request: Request, name: str, max_length: int = 200) -> str | None:
    raw = query_param(request, name)
    if raw is None:
        return None
    if len(raw) > max_length:
        raise Invalid({name: [f"At most {max_length} characters."]})
    return raw


IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"


def idempotent(
    request: Request, tenant: Tenant, principal: ApiPrincipal, handler: Callable[[], Response]
) -> Response:
    """Replay the first successful response to a request with the same `Idempotency-Key` for 24 h."""
    key = request.META.get(IDEMPOTENCY_HEADER)
    if not key:
        return handler()
    if len(key) > 200:
        raise Invalid({"Idempotency-Key": ["At most 200 characters."]})
    body = request.data if isinstance(request.data, dict | list) else None
    fingerprint = hashlib.sha256(
        json.dumps([request.method, request.path, body], sort_keys=True, default=str).encode()
    ).hexdigest()
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    stored = IdempotentResponse.objects.filter(
        tenant=tenant, actor=principal.actor, key=key, created_at__gte=cutoff
    ).first()
    if stored is not None:
        if stored.request_fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was used with a different request; use a new key.",
                details={"idempotency_key": key},
            )
        response = Response(stored.body, status=stored.status, headers=stored.headers)
        response["Idempotent-Replayed"] = "true"
        return response
    response = handler()
    if 200 <= response.status_code < 300:
        headers = {name: response[name] for name in ("ETag", "Location") if response.has_header(name)}
        IdempotentResponse.objects.filter(tenant=tenant, actor=principal.actor, key=key).filter(
            created_at__lt=cutoff
        ).delete()
        try:
            with transaction.atomic():
                IdempotentResponse.objects.create(
                    tenant=tenant,
                    actor=principal.actor,
                    key=key,
                    request_fingerprint=fingerprint,
                    status=response.status_code,
                    body=response.data,
                    headers=headers,
                )
        except IntegrityError:
            pass
    return response


class WriteRateThrottle(SimpleRateThrottle):
    """Per API client, on unsafe methods only; evaluation routes carry no throttle at all."""

    scope = "write"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.method in SAFE_METHODS:
            return None
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return None
        return f"throttle:write:{principal.tenant_slug}:{principal.client_id}"
