"""Small pieces every `/v1` view shares: body parsing, versions and ETags, idempotency, throttles."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from flagsvc_sdk.engine import MAX_SAFE_INTEGER
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.errors import Conflict, Invalid, MalformedRequest
from kernel.query_params import query_param
from tenancy.api.throttles import WriteRateThrottle as WriteRateThrottle  # re-exported for the views
from tenancy.models import IdempotentResponse, Tenant
from tenancy.principals import ApiPrincipal


def json_object(request: Request) -> dict[str, Any]:
    """The body as a dict: JSON that is not an object is a 422, not-JSON a 400 (raised by the parser).

    No body at all is not JSON either (400): DRF reads an empty body as `{}`, which made a `PUT` with
    an empty body reset the flag to its defaults as a new version.
    """
    data = request.data
    if request.stream is None:  # DRF's mark of an empty body (Content-Length 0 or absent)
        raise MalformedRequest("The body is empty: send a JSON object.")
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


IF_MATCH_HEADER = OpenApiParameter(
    "If-Match",
    # `*` (any version) is no precondition; a version has at most 15 digits here (the server reads up to
    # 2**53 - 1, which no version reaches, and a pattern cannot say that bound exactly).
    {"type": "string", "pattern": r'^\s*(\*|(W/)?"?[1-9][0-9]{0,14}"?)\s*$'},
    OpenApiParameter.HEADER,
    description='the version you read (`"<version>"`, from `ETag`); a stale one answers 412 '
    "`precondition_failed`, one that is no version 422",
)
"""The schema's `If-Match` of every route that reads it through `expected_version` (and only those)."""


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
IDEMPOTENCY_KEY_MAX_LENGTH = 200
IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
    OpenApiParameter.HEADER,
    description="a key of yours: the first successful response is kept 24 h and replayed "
    "(`Idempotent-Replayed: true`); the key with another request, or while its first is in flight, is 409",
)
"""The schema's `Idempotency-Key` of every route that honours it (through `idempotent`, and only those)."""
logger = logging.getLogger("flagsvc.idempotency")


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key`, None when absent or empty; a 422 naming the header when it is
    longer than the schema's `maxLength`. The one check of the header."""
    key = request.META.get(IDEMPOTENCY_HEADER)
    if not key:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise Invalid({"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."]})
    return str(key)


def idempotent(
    request: Request, tenant: Tenant, principal: ApiPrincipal, handler: Callable[[], Response]
) -> Response:
    """Replay the first successful response to a request with the same `Idempotency-Key` for 24 h.

    The key is claimed in the database (a row under a unique constraint, committed) *before* the work
    is done, so of several concurrent requests with one key exactly one does it. The others get 409
    `conflict`: "used with a different request" when their method, path or body differ, "still in
    flight" when they are the same request and the first has not answered yet (retry it: the replay
    follows). A first request that fails (not 2xx) frees the key again.
    """
    key = idempotency_key(request)
    if key is None:
        return handler()
    body = request.data if isinstance(request.data, dict | list) else None
    fingerprint = hashlib.sha256(
        json.dumps([request.method, request.path, body], sort_keys=True, default=str).encode()
    ).hexdigest()
    claim, claimed = _claim_idempotency_key(
        tenant=tenant, actor=principal.actor, key=key, fingerprint=fingerprint
    )
    if not claimed:
        return _replay(claim, key=key, fingerprint=fingerprint)
    try:
        response = handler()
    except BaseException:
        _release_idempotency_key(claim)
        raise
    if not 200 <= response.status_code < 300:
        _release_idempotency_key(claim)
        return response
    claim.status = response.status_code
    claim.body = response.data
    claim.headers = {name: response[name] for name in ("ETag", "Location") if response.has_header(name)}
    claim.save(update_fields=["status", "body", "headers"])
    return response


def _claim_idempotency_key(
    *, tenant: Tenant, actor: str, key: str, fingerprint: str
) -> tuple[IdempotentResponse, bool]:
    """Our new claim and True, or the live row another request holds and False.

    An expired row (a response older than the TTL, or a claim whose request never finished: its
    worker died) is deleted and the claim tried again; the delete names the row's pk and time so
    that of two requests freeing it, only one frees it.
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                return (
                    IdempotentResponse.objects.create(
                        tenant=tenant, actor=actor, key=key, request_fingerprint=fingerprint, headers={}
                    ),
                    True,
                )
        except IntegrityError:
            pass
        held = IdempotentResponse.objects.for_tenant(tenant).filter(actor=actor, key=key).first()
        if held is None:
            continue  # freed between our insert and our read
        if not _idempotency_claim_expired(held):
            return held, False
        IdempotentResponse.objects.for_tenant(tenant).filter(pk=held.pk, created_at=held.created_at).delete()
    raise Conflict(
        "This Idempotency-Key is being claimed by other requests right now; retry in a moment.",
        details={"idempotency_key": key, "in_flight": True},
    )


def _idempotency_claim_expired(held: IdempotentResponse) -> bool:
    age = timezone.now() - held.created_at
    if held.status is None:
        return age > timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    return age > timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def _replay(held: IdempotentResponse, *, key: str, fingerprint: str) -> Response:
    if held.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used with a different request; use a new key.",
            details={"idempotency_key": key, "in_flight": held.status is None},
        )
    if held.status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in flight; retry in a moment for its response.",
            details={"idempotency_key": key, "in_flight": True},
        )
    response = Response(held.body, status=held.status, headers=held.headers)
    response["Idempotent-Replayed"] = "true"
    return response


def _release_idempotency_key(claim: IdempotentResponse) -> None:
    """Free the key of a request that did not succeed, so the caller may retry with it."""
    try:
        IdempotentResponse.objects.for_tenant(claim.tenant_id).filter(pk=claim.pk).delete()
    except DatabaseError:
        # The database went away under the request; the claim expires on its own (IN_FLIGHT_SECONDS).
        logger.warning("could not release an Idempotency-Key claim", exc_info=True)
