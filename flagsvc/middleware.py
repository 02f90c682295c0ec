"""Request-scoped plumbing: request id, actor context, one JSON log line per request, API fallbacks."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponsePermanentRedirect
from django.middleware import clickjacking, common, csrf
from django_prometheus import middleware as prometheus_middleware
from django_prometheus import utils as prometheus_utils
from whitenoise import middleware as whitenoise_middleware

from kernel import context
from kernel.client_address import client_address
from kernel.errors import as_api_error, body_too_large_message, error_response, is_api_path

access_logger = logging.getLogger("flagsvc.access")
error_logger = logging.getLogger("kernel.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIds:
    """New request ids: 32 hex digits, a random prefix per process and a counter.

    Ids must be unique, not secret. `uuid4()` costs a `getrandom()` call and a `UUID` object on
    every request (a few µs, visible in a py-spy profile of a loaded worker). The prefix (80 random
    bits) is drawn again in a forked child, so gunicorn's workers never share one.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = secrets.token_hex(10)
        self._next = itertools.count().__next__

    def new(self) -> str:
        return f"{self._prefix}{self._next():012x}"


_new_request_id = RequestIds().new


def incoming_request_id(request: HttpRequest) -> str:
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")  # request.headers would copy every header
    if supplied and _REQUEST_ID.match(supplied):
        return supplied
    return _new_request_id()


class RequestContextMiddleware:
    """Outermost: gives every request an id, logs it as one JSON line, answers /v1 in JSON only.

    The request id is the caller's `X-Request-ID` when it is a sane token (1-128 of `A-Za-z0-9._:-`),
    otherwise a new one; it is returned in `X-Request-ID` and is in every log line of the request.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        rid = incoming_request_id(request)
        request.request_id = rid  # type: ignore[attr-defined]
        rid_token = context.current_request_id.set(rid)
        actor_token = context.current_actor.set(None)
        tenant_token = context.current_tenant.set(None)
        reason_token = context.current_reason.set(None)
        try:
            response = self.get_response(request)
            if is_api_path(request) and response.status_code in (404, 405, 500) and not _is_json(response):
                response = _json_fallback(response.status_code)
            response["X-Request-ID"] = rid
            log_request(request, response.status_code, started)
            # This line is the request's log line: Django's own "django.request" line for 4xx/5xx
            # responses would repeat it (its stack, if any, was logged where it was raised).
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        finally:
            context.current_request_id.reset(rid_token)
            context.current_actor.reset(actor_token)
            context.current_tenant.reset(tenant_token)
            context.current_reason.reset(reason_token)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """Under `/v1` an exception becomes the JSON error shape; elsewhere Django answers (and logs it)."""
        if not is_api_path(request):
            return None
        err = as_api_error(exc)
        if err is None:
            error_logger.exception(
                "unhandled error", exc_info=exc, extra={"method": request.method, "path": request.path}
            )
            return error_response(
                "internal_error", "An unexpected error occurred; the request id helps us find it.", 500
            )
        return error_response(err.code, err.message, err.status, err.details)


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


def _json_fallback(status: int) -> HttpResponse:
    if status == 404:
        return error_response("not_found", "No such route or entity.", 404)
    if status == 405:
        return error_response("method_not_allowed", "Method not allowed on this route.", 405)
    return error_response("internal_error", "An unexpected error occurred.", 500)


def log_request(request: HttpRequest, status: int, started: float) -> None:
    """One line per request, probes and scrapes included (api.md: "Every request gives one line")."""
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    access_logger.log(
        level,
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "request_id": context.current_request_id.get(),
            "tenant": context.current_tenant.get(),
            "actor": context.current_actor.get(),
            "client_addr": client_address(request),
        },
    )


class ApiBodyLimitMiddleware:
    """Refuses an API body over `API_MAX_BODY_BYTES` with 413 before anything reads it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.limit = int(settings.API_MAX_BODY_BYTES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response("malformed_request", "Content-Length is not a number.", 400)
            if length > self.limit:
                return error_response(
                    "payload_too_large",
                    body_too_large_message(length, self.limit),
                    413,
                    {"limit_bytes": self.limit},
                )
        return self.get_response(request)


class AdminActorMiddleware:
    """People in the admin act as `user:<username>` in the audit log."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request):  # API callers never load a session user
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                context.current_actor.set(f"user:{user.get_username()}")
        return self.get_response(request)


class _BrowserOnly:
    """Sessions, signed-in users, messages, CSRF, frame options and static files serve people in
    the admin.

    An API caller authenticates with a bearer token and renders no HTML, so on `/v1` these layers
    are skipped: about 110 µs per request (benchmarks/RESULTS.md, "Cost of each layer").
    """

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request):
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class WhiteNoiseMiddleware(_BrowserOnly, whitenoise_middleware.WhiteNoiseMiddleware):
    pass


PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Asked by load balancers, orchestrators and Prometheus, which name the process by its address."""


class CommonMiddleware(common.CommonMiddleware):
    """Django's, which also checks `Host` against ALLOWED_HOSTS, except on the probes: a Kubernetes
    probe or a scraper sends `Host: <pod address>:<port>`, and a 400 there kept a healthy process out
    of rotation. Those routes build no URL from the host, which is what the check protects."""

    def process_request(self, request: HttpRequest) -> HttpResponsePermanentRedirect | None:
        if request.path in PROBE_PATHS:
            return None
        return super().process_request(request)


class SessionMiddleware(_BrowserOnly, sessions_middleware.SessionMiddleware):
    pass


class CsrfViewMiddleware(_BrowserOnly, csrf.CsrfViewMiddleware):
    """CSRF protects cookie-authenticated forms. `/v1` takes bearer tokens only, so there it is off:
    a POST to an unknown `/v1` route got Django's HTML "CSRF verification failed" page, not a JSON 404.
    """

    def process_view(
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseForbidden | None:
        if is_api_path(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages_middleware.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_BrowserOnly, clickjacking.XFrameOptionsMiddleware):
    pass


class PrometheusAfterMiddleware(prometheus_middleware.PrometheusAfterMiddleware):
    """django-prometheus's request metrics, with each labelled series looked up once.

    `Metric.labels()` validates and locks on every call (~1-2 µs), and this middleware makes nine
    such calls per request. The label values (method, status, view name, transport, charset) come
    from small fixed sets, so the children are kept by metric and values.
    """

    _children: dict[tuple[object, ...], Any] = {}

    def process_request(self, request: HttpRequest) -> None:
        """The library's, reading two headers from `META`: `request.headers` copies them all (~5 µs)."""
        self.label_metric(self.metrics.requests_by_method, request, method=self._method(request)).inc()
        self.label_metric(
            self.metrics.requests_by_transport, request, transport=self._transport(request)
        ).inc()
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            self.label_metric(self.metrics.requests_ajax, request).inc()
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        self.label_metric(self.metrics.requests_body_bytes, request).observe(content_length)
        request.prometheus_after_middleware_event = prometheus_utils.Time()  # type: ignore[attr-defined]

    def label_metric(self, metric: Any, request: Any, response: Any = None, **labels: Any) -> Any:
        if not labels:
            return metric
        key = (metric, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child

    def process_view(self, request: HttpRequest, view_func: Any, *view_args: Any, **view_kwargs: Any) -> None:
        """The library's, with the view name and method read once and the child looked up by them."""
        match = getattr(request, "resolver_match", None)
        if match is None:
            return
        key = ("view", match.view_name or "<unnamed view>", self._transport(request), self._method(request))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.requests_by_view_transport_method.labels(
                view=key[1], transport=key[2], method=key[3]
            )
        child.inc()

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """The library's series, the same values: the children a response updates are found with one
        lookup by (status, view, method, charset) instead of four `labels()` calls."""
        method = self._method(request)
        view = self._get_view_name(request)
        charset = str(response.charset) if hasattr(response, "charset") else None
        key = ("response", response.status_code, view, method, request.method, charset)
        children = self._children.get(key)
        if children is None:
            metrics = self.metrics
            status = str(response.status_code)
            children = self._children[key] = (
                metrics.responses_by_status.labels(status=status),
                metrics.responses_by_status_view_method.labels(status=status, view=view, method=method),
                None if charset is None else metrics.responses_by_charset.labels(charset=charset),
                metrics.requests_latency_by_view_method.labels(view=view, method=request.method),
            )
        by_status, by_status_view_method, by_charset, latency = children
        by_status.inc()
        by_status_view_method.inc()
        if by_charset is not None:
            by_charset.inc()
        if getattr(response, "streaming", False):
            self.metrics.responses_streaming.inc()
        if hasattr(response, "content"):
            self.metrics.responses_body_bytes.observe(len(response.content))
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is not None:
            latency.observe(prometheus_utils.TimeSince(started))
        else:
            self.metrics.requests_unknown_latency.inc()
        return response
