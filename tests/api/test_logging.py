"""Structured logs (api.md, Operations): one JSON line per request, request ids, stacks, no secrets."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from flagsvc.logging import REQUEST_LOG_FIELDS, JsonFormatter, redact
from tenancy.api.base import TenantAPIView
from tenancy.services import api_client_create

pytestmark = pytest.mark.django_db

REQUIRED = REQUEST_LOG_FIELDS
LOGGERS = ("", "django.request", "django.server")


class Boom(RuntimeError):
    pass


def boom_plain(request: HttpRequest) -> HttpResponse:
    raise Boom("plain view exploded")


class BoomApiView(TenantAPIView):
    scope = "flags:read"

    def get(self, request: Request) -> Response:
        raise Boom("api view exploded")


def boom_v1(request: HttpRequest) -> HttpResponse:
    raise Boom("non-DRF view under /v1 exploded")


urlpatterns = [
    path("v1/boom-drf", BoomApiView.as_view()),
    path("v1/boom", boom_v1),
    path("boom", boom_plain),
    path("", include("flagsvc.urls")),
]


class CapturedLog:
    """What the process logged, formatted by our JsonFormatter."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def json_log() -> Iterator[CapturedLog]:
    captured = CapturedLog()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield captured
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)


def test_request__gives_exactly_one_json_line_with_the_documented_fields(api, tenant, json_log):
    response = api.get("/v1/flags")
    assert response.status_code == 200
    lines = json_log.lines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert set(line) >= REQUIRED, REQUIRED - set(line)
    assert line["method"] == "GET" and line["path"] == "/v1/flags" and line["status"] == 200
    assert line["level"] == "INFO" and line["message"] == "request"
    assert line["tenant"] == "acme" and line["actor"].startswith("client:acme-")
    assert line["request_id"] == response["X-Request-ID"]
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["timestamp"].endswith("Z")


def test_request__unauthenticated__one_warning_line_with_null_tenant_and_actor(json_log):
    response = APIClient().get("/v1/flags")
    assert response.status_code == 401
    [line] = json_log.lines()
    assert line["level"] == "WARNING" and line["status"] == 401
    assert line["tenant"] is None and line["actor"] is None


@pytest.mark.parametrize("route", ["/healthz", "/readyz", "/metrics", "/v1/no-such-route"])
def test_probes_scrapes_and_unknown_routes__logged_once_too(route, json_log):
    response = APIClient().get(route)
    lines = json_log.lines()
    assert [(line["path"], line["status"]) for line in lines] == [(route, response.status_code)]


def test_request_id__a_callers_value_is_passed_through_and_logged(api, json_log):
    response = api.get("/v1/flags", HTTP_X_REQUEST_ID="trace-abc.123:x")
    assert response["X-Request-ID"] == "trace-abc.123:x"
    assert json_log.lines()[0]["request_id"] == "trace-abc.123:x"


@pytest.mark.parametrize("supplied", [None, "", "has spaces", "x" * 129, "semi;colon"])
def test_request_id__missing_or_unsafe__a_new_one_is_generated(api, supplied, json_log):
    headers = {} if supplied is None else {"HTTP_X_REQUEST_ID": supplied}
    response = api.get("/v1/flags", **headers)
    rid = response["X-Request-ID"]
    assert rid and rid != supplied and len(rid) == 32
    assert json_log.lines()[0]["request_id"] == rid


def test_request_id__is_in_the_error_body_too(json_log):
    response = APIClient().get("/v1/flags", HTTP_X_REQUEST_ID="rid-401")
    assert response.json()["request_id"] == "rid-401"


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("route", "logger"),
    [("/v1/boom-drf", "kernel.errors"), ("/v1/boom", "kernel.errors"), ("/boom", "django.request")],
)
def test_unhandled_exception__logged_once_as_json_with_the_stack(api, route, logger, json_log):
    api.raise_request_exception = False
    response = api.get(route, HTTP_X_REQUEST_ID="rid-boom")
    assert response.status_code == 500
    lines = json_log.lines()
    errors = [line for line in lines if "exception" in line]
    assert len(errors) == 1, lines
    [error] = errors
    assert error["logger"] == logger and error["level"] == "ERROR"
    assert error["request_id"] == "rid-boom"
    assert "Traceback (most recent call last)" in error["exception"]
    assert "Boom: " in error["exception"] and "exploded" in error["exception"]
    access = [line for line in lines if line["logger"] == "flagsvc.access"]
    assert [(line["status"], line["request_id"]) for line in access] == [(500, "rid-boom")]
    assert len(lines) == 2, "one line for the stack, one for the request; no duplicate from django.request"
    if route.startswith("/v1"):
        assert response.json()["error"]["code"] == "internal_error"
        assert response.json()["request_id"] == "rid-boom"


def test_credentials_in_requests__never_reach_a_log_line(tenant, json_log):
    password = "correct-horse-battery-staple-42"
    get_user_model().objects.create_superuser("ops", "ops@example.test", password)
    issued = api_client_create(tenant=tenant, scopes=["flags:read", "flags:write"], name="logs")
    secret = issued.client_secret
    client = APIClient()

    token_response = client.post(
        "/v1/auth/token", {"client_id": issued.client.client_id, "client_secret": secret}, format="json"
    )
    jwt = token_response.json()["access_token"]
    client.post(
        "/v1/auth/token", {"client_id": issued.client.client_id, "client_secret": secret + "x"}, format="json"
    )
    client.post(
        "/v1/auth/token", f'{{"client_id": "x", "client_secret": "{secret}"', content_type="application/json"
    )
    authorized = {"HTTP_AUTHORIZATION": f"Bearer {jwt}", "HTTP_X_TENANT_ID": tenant.slug}
    client.get("/v1/flags", **authorized)
    client.post("/v1/flags", {"key": "x", "state": "sideways"}, format="json", **authorized)
    client.get("/v1/flags", HTTP_AUTHORIZATION=f"Bearer {jwt[:-4]}abcd", HTTP_X_TENANT_ID=tenant.slug)
    client.get("/v1/flags", HTTP_AUTHORIZATION=f"Basic {secret}", HTTP_X_TENANT_ID=tenant.slug)
    admin = APIClient(enforce_csrf_checks=False)
    admin.post("/admin/login/", {"username": "ops", "password": password})
    admin.post("/admin/login/", {"username": "ops", "password": password + "-wrong"})

    text = json_log.text()
    assert len(json_log.lines()) >= 9, "every request above is logged"
    for needle in (secret, jwt, jwt.split(".")[2], password, f"Bearer {jwt}", "HTTP_AUTHORIZATION"):
        assert needle not in text, f"{needle[:12]}... reached the logs"


def test_redact__masks_credentials_a_stray_log_call_might_carry():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY21lLTEifQ.c2lnbmF0dXJlLXBhcnQ"
    line = json.dumps(
        {
            "message": f"failed: Authorization: Bearer {jwt}",
            "body": '{"client_id": "acme-1", "client_secret": "s3cr3t-value"}',
            "headers": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
            "form": "username=bob&password=hunter2",
            "tenant": "acme",
        }
    )
    masked = redact(line)
    for leaked in (jwt, "s3cr3t-value", "dXNlcjpwYXNzd29yZA==", "hunter2"):
        assert leaked not in masked
    assert json.loads(masked)["tenant"] == "acme"
    assert "acme-1" in masked and "bob" in masked, "only credentials are masked"


def test_json_formatter__an_exception_in_a_log_call__becomes_the_exception_field():
    record = logging.LogRecord("flagsvc.test", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    try:
        raise Boom("with token=abc123secret")
    except Boom:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and line["level"] == "ERROR"
    assert "Boom: with token=[REDACTED]" in line["exception"]
    assert "abc123secret" not in json.dumps(line)


def test_request_line__client_addr__is_the_peer_unless_a_trusted_proxy_forwarded_it(json_log):
    client = APIClient()
    client.get("/healthz", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.5")
    with override_settings(TRUSTED_PROXIES=["192.0.2.0/24"]):
        client.get("/healthz", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")

    assert [line["client_addr"] for line in json_log.lines()] == ["192.0.2.10", "203.0.113.5"]
