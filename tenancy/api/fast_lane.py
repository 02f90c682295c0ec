"""A DRF view's happy path without DRF's dispatch, for the routes where DRF's cost is most of the request.

`POST /v1/evaluate` does ~10 µs of its own work; DRF's request wrapping, parsing and exception
plumbing cost several times that around it (benchmarks/RESULTS.md). `fast_lane` answers a request
only when it can prove the DRF view would answer it the same way, and hands anything else, untouched,
to the DRF view:

- The view's DRF policy is one the lane knows, read from the view on every request (so a permission,
  throttle, parser, authentication or versioning class added later, even by a test's monkeypatch,
  closes the lane): bearer-token authentication, the route-scope permission, no throttles, the JSON
  parser, the default content negotiation and exception handler. A view that overrides any step of
  DRF's dispatch gets no lane at all.
- Content negotiation is DRF's own (`DefaultContentNegotiation.select_renderer` over the view's
  renderers: `Accept` parameters, wildcards, vendor types and `?format=` as DRF reads them), and the
  lane answers only when it picks DRF's `JSONRenderer`; otherwise DRF answers (406, 404).
- The answer is rendered by DRF's `JSONRenderer` with the accepted media type (so `indent` and the
  JSON settings apply) into the content type `Response.rendered_content` gives; an error the answer
  raises goes through the view's exception handler into a DRF `Response`. Either gets the view's
  default headers, as `APIView.finalize_response` adds them. The body is parsed only when it is
  `application/json` in UTF-8, which the view's `JsonBodyParser` reads the same way; any other body goes
  through DRF. `tests/api/test_evaluate_fast_lane.py` compares status, body and headers with DRF's
  over a matrix of `Accept`, `Content-Type`, bodies and `?format=`.

The wrapper keeps the DRF view's attributes, so the OpenAPI schema still describes the route from
the DRF view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from flagsvc_sdk.engine import ValidationFailed
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from kernel.errors import api_exception_handler
from kernel.json_input import JsonBodyParser, parse_json
from tenancy.api.base import TenantAPIView, authorised_tenant
from tenancy.authentication import ApiClientJWTAuthentication
from tenancy.models import Tenant
from tenancy.permissions import HasRouteScope, required_scope

View = Callable[..., HttpResponse]
Answer = Callable[[Tenant, dict[str, Any]], Any]
Policy = tuple[Any, ...]

_UTF8 = ("utf-8", "utf8")
_MAX_MEDIA_TYPE_LENGTH: int = DefaultContentNegotiation.max_media_type_length  # type: ignore[attr-defined]  # DRF 3.16+, not in the stubs
_MAX_CACHED_ACCEPT = 512
_RENDERER = JSONRenderer()  # holds no state: DRF reads its settings on every render
"""Longer `Accept` headers are negotiated on every request rather than remembered."""

DISPATCH_STEPS = (
    "dispatch",
    "initialize_request",
    "initial",
    "perform_authentication",
    "check_permissions",
    "check_throttles",
    "determine_version",
    "perform_content_negotiation",
    "get_format_suffix",
    "get_authenticators",
    "get_permissions",
    "get_throttles",
    "get_parsers",
    "get_renderers",
    "get_content_negotiator",
    "get_exception_handler",
    "get_exception_handler_context",
    "handle_exception",
    "finalize_response",
    "default_response_headers",
    "allowed_methods",
)
"""The steps of `APIView.dispatch` the lane takes in its own way: a view may not override them."""


class JsonAnswerView(TenantAPIView):
    """A POST route whose answer is a function of the tenant and the JSON object body alone.

    Its DRF `post` and `fast_lane` both call `answer`, so the two paths cannot drift apart.
    """

    @staticmethod
    def answer(tenant: Tenant, body: dict[str, Any]) -> Any:
        raise NotImplementedError


def drf_policy(view_class: type[APIView]) -> Policy:
    """Everything DRF reads from the view class or settings to check, parse and answer a request."""
    return (
        tuple(view_class.authentication_classes),
        tuple(view_class.permission_classes),
        tuple(view_class.throttle_classes),
        tuple(view_class.parser_classes),
        tuple(view_class.renderer_classes),
        view_class.content_negotiation_class,
        view_class.versioning_class,
        view_class.settings.EXCEPTION_HANDLER,
        view_class.settings.URL_FORMAT_OVERRIDE,
        view_class.settings.FORMAT_SUFFIX_KWARG,
    )


def known_policy(policy: Policy) -> bool:
    """Whether the lane makes exactly the checks this policy asks for (see the module docstring)."""
    authentication, permissions, throttles, parsers, _, negotiation, versioning, handler = policy[:8]
    return (
        bool(authentication)
        and all(reads_only_request_meta(cls) for cls in authentication)
        and permissions == (HasRouteScope,)
        and throttles == ()
        and parsers == (JsonBodyParser,)
        and negotiation is DefaultContentNegotiation
        and versioning is None
        and handler is api_exception_handler
    )


def reads_only_request_meta(authentication_class: type[Any]) -> bool:
    """An authentication class the lane may call with the plain Django request: ours, or one that
    says so with ``reads_only_request_meta = True`` (the benchmark's stand-in does)."""
    return authentication_class is ApiClientJWTAuthentication or (
        getattr(authentication_class, "reads_only_request_meta", False) is True
    )


def overridden_steps(view_class: type[APIView]) -> list[str]:
    """The dispatch steps `view_class` does differently from `TenantAPIView`."""
    return [name for name in DISPATCH_STEPS if getattr(view_class, name) is not getattr(TenantAPIView, name)]


def fast_lane(view_class: type[JsonAnswerView]) -> View:
    """`view_class.as_view()`, except that a POST the DRF view would answer through `answer` with its
    JSON renderer is answered by `view_class.answer(tenant, body)` directly."""
    drf_view = view_class.as_view()
    scope = required_scope(view_class, "POST")
    if scope is None:
        raise ImproperlyConfigured(f"{view_class.__name__} names no scope for POST")
    if overridden_steps(view_class):
        return drf_view
    instance = view_class()
    allow = ", ".join(instance.allowed_methods)

    @functools.wraps(drf_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = None
        if request.method == "POST":
            policy = drf_policy(view_class)
            if known_policy(policy):
                response = answer_directly(request, kwargs, view_class, scope, policy, allow)
        if response is None:
            return drf_view(request, *args, **kwargs)
        return response

    return view


def answer_directly(
    request: HttpRequest,
    kwargs: Mapping[str, Any],
    view_class: type[JsonAnswerView],
    scope: str,
    policy: Policy,
    allow: str,
) -> HttpResponse | None:
    """The DRF view's response to a request that passes every check, or None to let DRF answer."""
    renderer_classes = policy[4]
    format_ = (kwargs.get(policy[9]) if policy[9] else None) or (
        request.GET.get(policy[8]) if policy[8] and request.META.get("QUERY_STRING") else None
    )
    negotiated = negotiate(request.META.get("HTTP_ACCEPT"), format_, renderer_classes)
    if negotiated is None or negotiated[0] is not JSONRenderer:
        return None
    if getattr(request, "_force_auth_user", None) is not None or getattr(request, "_force_auth_token", None):
        return None  # DRF's test client: DRF's Request authenticates such a request its own way
    authorised = authorised_tenant(request, scope, policy[0])
    if authorised is None:
        return None
    body = json_object_body(request)
    if body is None:
        return None
    try:
        data = view_class.answer(authorised[1], body)
    except Exception as exc:  # answered as APIView.handle_exception does, with the view's handler
        handled = policy[7](exc, {"view": None, "args": (), "kwargs": kwargs, "request": request})
        if handled is None:  # pragma: no cover - our handler answers every exception
            raise
        handled.exception = True
        # What APIView.finalize_response does with the negotiated renderer and the view's headers.
        handled.accepted_renderer = JSONRenderer()
        handled.accepted_media_type = negotiated[1]
        handled.renderer_context = {}
        response: HttpResponse = handled
    else:
        response = rendered(data, negotiated[1])
    response["Allow"] = allow
    if len(renderer_classes) > 1:
        response["Vary"] = "Accept"
    return response


def rendered(data: Any, accepted_media_type: str) -> HttpResponse:
    """What a DRF `Response(data)` with `JSONRenderer` renders to (`Response.rendered_content`),
    without the 15 µs of building a template response: the renderer's bytes and content type."""
    renderer = _RENDERER
    # The renderer reads only `indent` from the media type's parameters; without any, skip parsing.
    content = renderer.render(data, accepted_media_type if ";" in accepted_media_type else None, {})
    content_type = renderer.media_type
    if renderer.charset is not None:  # pragma: no cover - JSONRenderer has none
        content_type = f"{content_type}; charset={renderer.charset}"
    return HttpResponse(content, content_type=content_type)


class _AcceptOnly:
    """What `DefaultContentNegotiation.select_renderer` reads from a request (the format is
    passed to it as the suffix, which it prefers to the query's)."""

    query_params: Mapping[str, str] = {}

    def __init__(self, accept: str | None) -> None:
        self.headers = {} if accept is None else {"accept": accept}


@functools.lru_cache(maxsize=256)
def _negotiate_cached(
    accept: str | None, format_: str | None, renderer_classes: tuple[type[BaseRenderer], ...]
) -> tuple[type[BaseRenderer], str] | None:
    return _negotiate(accept, format_, renderer_classes)


def _negotiate(
    accept: str | None, format_: str | None, renderer_classes: tuple[type[BaseRenderer], ...]
) -> tuple[type[BaseRenderer], str] | None:
    renderers = [renderer_class() for renderer_class in renderer_classes]
    try:
        renderer, media_type = DefaultContentNegotiation().select_renderer(
            cast(Request, _AcceptOnly(accept)), renderers, format_
        )
    except (NotAcceptable, Http404):
        return None
    return type(renderer), media_type


def negotiate(
    accept: str | None, format_: str | None, renderer_classes: tuple[type[BaseRenderer], ...]
) -> tuple[type[BaseRenderer], str] | None:
    """DRF's choice of renderer class and accepted media type, or None where DRF answers 406/404.

    Remembered for the few `Accept` headers real clients send; never for long ones, so a client
    cannot fill the memory with headers.
    """
    if accept is not None and len(accept) > _MAX_CACHED_ACCEPT:
        return _negotiate(accept, format_, renderer_classes)
    return _negotiate_cached(accept, format_, renderer_classes)


def json_object_body(request: HttpRequest) -> dict[str, Any] | None:
    """The body as the view's parser (`JsonBodyParser`, i.e. `parse_json`) reads it when that is a
    JSON object, else None: the DRF view then parses it again and says what is wrong.

    Only `application/json` in UTF-8: DRF's parser takes more (any parameters, other charsets), and
    those requests go through DRF.
    """
    if request.content_type != "application/json":
        return None
    if len(request.META.get("CONTENT_TYPE", "")) > _MAX_MEDIA_TYPE_LENGTH:
        return None  # DRF refuses to parse it (415)
    if request.content_params and (
        set(request.content_params) != {"charset"} or request.content_params["charset"].lower() not in _UTF8
    ):
        return None
    try:
        body = parse_json(request.body.decode("utf-8"))
    except (ValueError, ValidationFailed, RequestDataTooBig):
        return None
    return body if isinstance(body, dict) else None
