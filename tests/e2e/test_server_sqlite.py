"""A real gunicorn process on a clean SQLite database, driven over HTTP only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flagsvc.logging import REQUEST_LOG_FIELDS
from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("e2e-sqlite")
    env = service_env(f"sqlite:///{workdir / 'e2e.sqlite3'}")
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    running = Server(env).start(workdir / "server.log")
    try:
        yield running, client
    finally:
        running.stop()


def _token(server: Server, client: dict[str, str]) -> dict[str, str]:
    status, _, body = server.request(
        "POST", "/v1/auth/token", {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}


def test_e2e__flag_lifecycle_over_http(server):
    running, client = server
    headers = _token(running, client)
    flag = {
        "key": "e2e-flag",
        "state": "on",
        "variants": [
            {"key": "on", "value": True, "weight": 50},
            {"key": "off", "value": False, "weight": 50},
        ],
        "rules": [
            {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
        ],
    }
    status, response_headers, body = running.request("POST", "/v1/flags", flag, headers)
    assert status == 201, body
    assert response_headers["ETag"] == '"1"'
    status, _, body = running.request(
        "POST",
        "/v1/evaluate",
        {"flag_key": "e2e-flag", "user": {"id": "u-1", "attributes": {"country": "NL"}}},
        headers,
    )
    assert status == 200 and body["reason"] == "RULE_MATCH"
    status, _, body = running.request(
        "PATCH", "/v1/flags/e2e-flag", {"state": "off"}, {**headers, "If-Match": '"1"'}
    )
    assert status == 200 and body["version"] == 2
    status, _, body = running.request(
        "POST",
        "/v1/evaluate",
        {"flag_key": "e2e-flag", "user": {"id": "u-1", "attributes": {"country": "NL"}}},
        headers,
    )
    assert body["reason"] == "OFF"
    status, _, body = running.request("GET", "/v1/audit?flag_key=e2e-flag", None, headers)
    assert [entry["action"] for entry in body["results"]] == ["update", "create"]
    status, _, body = running.request("DELETE", "/v1/flags/e2e-flag", None, headers)
    assert status == 204


def _post_raw(
    server: Server, path: str, raw: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{server.base}{path}", data=raw, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("path", "raw", "status", "field"),
    [
        ("/v1/auth/token", b"[" * 10_000 + b"]" * 10_000, 422, "body"),
        ("/v1/evaluate", b'{"flag_key": "x", "user": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 422, "body"),
        ("/v1/flags", b'{"key": "k", "name": "a\\u0000b"}', 422, "name"),
        (
            "/v1/evaluate/preview",
            b'{"flag_key": "x", "user": {"id": "u", "attributes": {"n": 1e999}}}',
            422,
            "user.attributes.n",
        ),
    ],
)
def test_e2e__hostile_json__the_error_shape_from_a_real_server(server, path, raw, status, field):
    running, client = server
    headers = _token(running, client) if path != "/v1/auth/token" else {}
    answered, body = _post_raw(running, path, raw, headers)
    assert answered == status, body
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["details"]["fields"]


def test_e2e__errors_are_json_and_carry_request_ids(server):
    running, _ = server
    status, headers, body = running.request("GET", "/v1/flags", None, {"X-Request-ID": "e2e-rid-1"})
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    assert headers["X-Request-ID"] == "e2e-rid-1"
    assert body["request_id"] == "e2e-rid-1"
    status, _, body = running.request("GET", "/v1/no/such/route")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_e2e__operations_endpoints(server):
    running, _ = server
    assert running.request("GET", "/healthz")[2] == "ok"
    assert running.request("GET", "/readyz")[:3:2] == (200, "ready")
    status, _, metrics = running.request("GET", "/metrics")
    assert status == 200 and "django_http_requests_total_by_method_total" in metrics
    status, headers, schema = running.request("GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert "/v1/flags" in json.loads(schema)["paths"]
    status, _, docs = running.request("GET", "/docs")
    assert status == 200 and "swagger" in docs.lower() and "cdn" not in docs.lower()


def test_e2e__log_lines_are_json_and_never_hold_secrets(server):
    running, client = server
    headers = _token(running, client)
    running.request("GET", "/v1/flags", None, headers)
    running.request(
        "POST",
        "/v1/auth/token",
        {"client_id": client["client_id"], "client_secret": "wrong-" + client["client_secret"]},
    )
    log_text = Path(running.log_path).read_text()  # type: ignore[arg-type]
    assert client["client_secret"] not in log_text
    assert headers["Authorization"].split()[1] not in log_text
    request_lines = [
        json.loads(line) for line in log_text.splitlines() if line.startswith("{") and '"request"' in line
    ]
    assert request_lines, log_text[-2000:]
    line = request_lines[-1]
    assert set(line) >= REQUEST_LOG_FIELDS, REQUEST_LOG_FIELDS - set(line)
