"""One error shape for the whole API: `{"error": {"code", "message", "details"}, "request_id"}`.

Services raise the `ApiError` subclasses below (or the engine's definition errors); the DRF
exception handler and the `/v1` fallbacks render them. Nothing under `/v1` ever answers in HTML.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from flagsvc_sdk.engine import PayloadTooLarge, PrerequisiteCycle, ValidationFailed
from rest_framework import exceptions as drf
from rest_framework.response import Response

from kernel import context

logger = logging.getLogger("kernel.errors")


class ApiError(Exception):
    status = 400
    code = "malformed_request"
    default_message = "The request is malformed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class MalformedRequest(ApiError):
    status, code = 400, "malformed_request"


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"
    default_message = "A valid bearer token is required."


class TenantMismatch(ApiError):
    status, code = 403, "tenant_mismatch"
    default_message = "X-Tenant-ID does not match the token's tenant, or the tenant is not active."


class InsufficientScope(ApiError):
    status, code = 403, "insufficient_scope"
    default_message = "The token lacks the scope this route needs."


class NotFound(ApiError):
    status, code = 404, "not_found"
    default_message = "Not found."


class FlagNotFound(NotFound):
    code = "flag_not_found"
    default_message = "No such flag in this tenant."


class Conflict(ApiError):
    status, code = 409, "conflict"
    default_message = "The request conflicts with the current state."


class RolloutConflict(Conflict):
    """A manual write to what an active rollout plan drives, or a second plan for the same target."""

    code = "rollout_conflict"


class PreconditionFailed(ApiError):
    status, code = 412, "precondition_failed"
    default_message = "The version you sent is not the current version."


class TooLarge(ApiError):
    status, code = 413, "payload_too_large"
    default_message = "The request body is too large."


class Invalid(ApiError):
    status, code = 422, "validation_error"
    default_message = "The request breaks the schema or the rules."

    def __init__(self, fields: dict[str, list[str]], message: str | None = None) -> None:
        summary = message or _summarise(fields)
        super().__init__(summary, details={"fields": fields})


class PrerequisiteCycleConflict(Conflict):
    code = "prerequisite_cycle"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"
    default_message = "Method not allowed on this route."


class NotAcceptable(ApiError):
    status, code = 406, "not_acceptable"
    default_message = "Only application/json responses are available."


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"
    default_message = "Send the body as application/json."


class InternalError(ApiError):
    status, code = 500, "internal_error"
    default_message = "An unexpected error occurred; the request id helps us find it."


class RateLimited(ApiError):
    status, code = 429, "rate_limited"
    default_message = "Too many requests."


class Unavailable(ApiError):
    status, code = 503, "unavailable"
    default_message = "The database is unavailable; try again shortly. Evaluation keeps serving."


def _summarise(fields: dict[str, list[str]]) -> str:
    if not fields:
        return "The request is invalid."
    first_field, messages = next(iter(fields.items()))
    first = f"{first_field}: {messages[0]}" if messages else first_field
    more = len(fields) - 1
    return f"Invalid request: {first}" + (f" (and {more} more field(s))" if more else "")


def error_body(
    code: str, message: str, details: dict[str, Any] | None = None, *, request_id: str | None = None
) -> dict[str, Any]:
    """The one error shape; the request id is the current request's unless one is given."""
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "request_id": request_id or context.request_id(),
    }


def body_too_large_message(length: int | None, limit: int) -> str:
    """The 413 for a body over `API_MAX_BODY_BYTES`, from the middleware or the gunicorn worker."""
    size = (
        f"The chunked body passed the limit of {limit} bytes."
        if length is None
        else f"The body is {length} bytes; the limit is {limit} bytes."
    )
    return f"{size} Send a smaller body (split a bulk request)."


def error_response(
    code: str, message: str, status: int, details: dict[str, Any] | None = None
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="flagsvc"'
    return response


def as_api_error(exc: BaseException) -> ApiError | None:
    """Map any exception we know how to explain onto an ApiError; None for the unknown ones."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationFailed):
        return Invalid(exc.fields)
    if isinstance(exc, PayloadTooLarge):
        return TooLarge(str(exc), details={"field": exc.field, "limit_bytes": exc.limit})
    if isinstance(exc, PrerequisiteCycle):
        return PrerequisiteCycleConflict(
            "The prerequisites would form a cycle: " + " -> ".join(exc.cycle), details={"cycle": exc.cycle}
        )
    if isinstance(exc, RequestDataTooBig):
        return TooLarge()
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return Unauthenticated(_detail_text(exc, Unauthenticated.default_message))
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        return InsufficientScope(_detail_text(exc, InsufficientScope.default_message))
    if isinstance(exc, drf.NotFound | Http404):
        return NotFound()
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(_detail_text(exc, MethodNotAllowed.default_message))
    if isinstance(exc, drf.NotAcceptable):
        return NotAcceptable()
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType()
    if isinstance(exc, drf.ParseError):
        return MalformedRequest("The body is not valid JSON: " + _detail_text(exc, "parse error"))
    if isinstance(exc, drf.Throttled):
        wait = max(1, int(getattr(exc, "wait", None) or 1))
        return RateLimited(f"Too many requests; retry in {wait} s.", details={"retry_after": wait})
    if isinstance(exc, drf.ValidationError):
        return Invalid(_flatten_drf_errors(exc.detail))
    if isinstance(exc, OperationalError | InterfaceError):
        return Unavailable()
    if isinstance(exc, DatabaseError) and _looks_like_connection_error(exc):
        return Unavailable()
    return None


def _looks_like_connection_error(exc: DatabaseError) -> bool:
    text = str(exc).lower()
    return "connection" in text or "could not connect" in text or "server closed" in text


def _detail_text(exc: BaseException, fallback: str) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str) and detail:
        return detail
    return fallback


def _flatten_drf_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" and not prefix else key
            path = f"{prefix}.{name}" if prefix else str(name)
            fields.update(_flatten_drf_errors(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            fields[prefix or "body"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                fields.update(_flatten_drf_errors(item, f"{prefix}[{index}]"))
    else:
        fields[prefix or "body"] = [str(detail)]
    return fields


def api_exception_handler(exc: Exception, ctx: dict[str, Any]) -> Response:
    err = as_api_error(exc)
    if err is None:
        logger.exception("unhandled error in API view", exc_info=exc)
        err = InternalError()
    response = Response(error_body(err.code, err.message, err.details), status=err.status)
    if err.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="flagsvc"'
    if isinstance(err, RateLimited):
        response["Retry-After"] = str(err.details.get("retry_after", 1))
    return response


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith(("/v1/", "/ofrep/")) or request.path == "/v1"
