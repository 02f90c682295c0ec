"""A DRF view's happy path without DRF, for the routes where DRF's cost is most of the request.

`POST /v1/evaluate` does ~10 µs of its own work; DRF's request wrapping, content negotiation,
parsing and rendering cost about ten times that around it (benchmarks/RESULTS.md). `fast_lane` answers a request
that passes every check the DRF view would make (token, tenant, scope, a JSON `Accept`, a JSON
object body) with the same body and headers the DRF view would send, and hands anything else, untouched, to the DRF view, so every
error keeps its one shape, status and message. The wrapper keeps the DRF view's attributes, so the
OpenAPI schema still describes the route from the DRF view.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from flagsvc_sdk.engine import ValidationFailed

from kernel.errors import as_api_error, error_response
from kernel.json_input import parse_json
from tenancy.api.base import TenantAPIView, authorised_tenant
from tenancy.models import Tenant
from tenancy.permissions import required_scope

View = Callable[..., HttpResponse]
Answer = Callable[[Tenant, dict[str, Any]], Any]

_UTF8 = ("utf-8", "utf8")
_JSON_MEDIA_RANGES = ("application/json", "application/*", "*/*")


class JsonAnswerView(TenantAPIView):
    """A POST route whose answer is a function of the tenant and the JSON object body alone.

    Its DRF `post` and `fast_lane` both call `answer`, so the two paths cannot drift apart.
    """

    @staticmethod
    def answer(tenant: Tenant, body: dict[str, Any]) -> Any:
        raise NotImplementedError


def fast_lane(view_class: type[JsonAnswerView]) -> View:
    """`view_class.as_view()`, except that a POST passing all its checks is answered by
    `view_class.answer(tenant, body)` directly."""
    drf_view = view_class.as_view()
    scope, answer = required_scope(view_class, "POST"), view_class.answer
    if scope is None:
        raise ImproperlyConfigured(f"{view_class.__name__} names no scope for POST")
    allow = ", ".join(view_class().allowed_methods)

    @functools.wraps(drf_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = answer_directly(request, scope, answer)
        if response is None:
            return drf_view(request, *args, **kwargs)
        response["Allow"] = allow  # as DRF's view sends it
        return response

    return view


def answer_directly(request: HttpRequest, scope: str, answer: Answer) -> HttpResponse | None:
    """The response for a request that passes every check, or None to let the DRF view answer."""
    if request.method != "POST" or not accepts_json(request):
        return None
    authorised = authorised_tenant(request, scope)
    if authorised is None:
        return None
    body = json_object_body(request)
    if body is None:
        return None
    try:
        return json_response(answer(authorised[1], body))
    except Exception as exc:
        err = as_api_error(exc)
        if err is None:
            raise
        return error_response(err.code, err.message, err.status, err.details)


def accepts_json(request: HttpRequest) -> bool:
    """Whether DRF's content negotiation would pick its JSON renderer (else it answers 406)."""
    accept = request.META.get("HTTP_ACCEPT", "")
    return not accept or any(media in accept for media in _JSON_MEDIA_RANGES)


def json_object_body(request: HttpRequest) -> dict[str, Any] | None:
    """The body as the DRF view's parser reads it (`parse_json`) when that is a JSON object, else
    None: the DRF view then parses it again and says what is wrong."""
    if request.content_type != "application/json":
        return None
    if request.content_params and request.content_params.get("charset", "utf-8").lower() not in _UTF8:
        return None
    try:
        body = parse_json(request.body.decode("utf-8"))
    except (ValueError, ValidationFailed, RequestDataTooBig):
        return None
    return body if isinstance(body, dict) else None


def json_response(data: Any) -> HttpResponse:
    """What DRF's `JSONRenderer` sends with our settings: compact, UTF-8, no NaN."""
    content = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return HttpResponse(content.encode(), content_type="application/json")
