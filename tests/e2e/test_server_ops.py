"""Operations on a real gunicorn process: JSON log lines without secrets, metrics across workers, SIGTERM."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flagsvc.logging import REQUEST_LOG_FIELDS
from tests.e2e.server import PYTHON, ROOT, Server, bootstrap_tenant, free_port, manage, service_env

pytestmark = pytest.mark.e2e

ACCESS_FIELDS = REQUEST_LOG_FIELDS - {"actor"}
PASSWORD = "e2e-correct-horse-battery-staple"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = service_env(f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    manage(environment, "migrate", "--noinput")
    return environment


def _token(server: Server, client: dict[str, str], secret: str | None = None) -> tuple[int, dict]:
    status, _, body = server.request(
        "POST",
        "/v1/auth/token",
        {"client_id": client["client_id"], "client_secret": secret or client["client_secret"]},
    )
    return status, body


def _admin_login(server: Server, username: str, password: str) -> int:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{server.base}/admin/login/", timeout=10) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the admin login form has a CSRF token"
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": match[1], "username": username, "password": password}
    )
    request = urllib.request.Request(
        f"{server.base}/admin/login/?next=/admin/", data=form.encode(), method="POST"
    )
    with opener.open(request, timeout=10) as response:
        return int(response.status)


def test_e2e__log_is_json_lines_with_request_fields__no_credential_reaches_it(env, tmp_path):
    client = bootstrap_tenant(env)
    subprocess.run(
        [
            PYTHON,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "ops",
            "--email",
            "ops@example.test",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )
    log = tmp_path / "server.log"
    server = Server(env).start(log)
    try:
        status, body = _token(server, client)
        assert status == 200
        jwt = body["access_token"]
        assert _token(server, client, client["client_secret"] + "-wrong")[0] == 401
        headers = {
            "Authorization": f"Bearer {jwt}",
            "X-Tenant-ID": client["tenant"],
            "X-Request-ID": "e2e-ops-1",
        }
        assert server.request("POST", "/v1/flags", {"key": "logged", "state": "on"}, headers)[0] == 201
        assert (
            server.request("POST", "/v1/evaluate", {"flag_key": "logged", "user": {"id": "u-1"}}, headers)[0]
            == 200
        )
        tampered = {**headers, "Authorization": f"Bearer {jwt[:-6]}AAAAAA"}
        assert server.request("GET", "/v1/flags", None, tampered)[0] == 401
        assert (
            server.request("GET", "/v1/flags", None, {**headers, "Authorization": f"Basic {PASSWORD}"})[0]
            == 401
        )
        assert _admin_login(server, "ops", PASSWORD) == 200
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0, "SIGTERM is a clean shutdown"

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line.get("logger") == "flagsvc.access"]
    assert len(access) >= 9
    for line in access:
        assert set(line) >= ACCESS_FIELDS, ACCESS_FIELDS - set(line)
    created = next(line for line in access if line["request_id"] == "e2e-ops-1" and line["method"] == "POST")
    assert created["tenant"] == client["tenant"] and created["actor"] == f"client:{client['client_id']}"
    assert any(line["message"].startswith("Shutting down") for line in lines), (
        "gunicorn's own lines are JSON too"
    )
    for secret in (client["client_secret"], jwt, jwt.split(".")[2], PASSWORD, "Bearer ey"):
        assert secret not in text, f"{secret[:10]}... reached the server log"


def _evaluations(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "flagsvc_evaluations":
            total += sum(
                sample.value for sample in family.samples if sample.name == "flagsvc_evaluations_total"
            )
    return total


def test_e2e__metrics_are_summed_across_gunicorn_workers(env, tmp_path):
    client = bootstrap_tenant(env)
    # Every worker sees the new flag at once (no 0.5 s cross-process bound to wait out).
    server = Server({**env, "RULESET_CHECK_INTERVAL": "0"}).start(tmp_path / "server.log", workers=3)
    try:
        _, body = _token(server, client)
        headers = {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}
        assert server.request("POST", "/v1/flags", {"key": "counted", "state": "on"}, headers)[0] == 201
        for index in range(30):
            response = server.request(
                "POST", "/v1/evaluate", {"flag_key": "counted", "user": {"id": f"u-{index}"}}, headers
            )
            assert response[0] == 200
        scrapes = [server.request("GET", "/metrics")[2] for _ in range(6)]
    finally:
        server.stop()
    assert [_evaluations(text) for text in scrapes] == [30.0] * 6, "every scrape sees all workers' counts"


def test_e2e__redis_unreachable__tokens_writes_and_evaluation_keep_working(env, tmp_path):
    closed_port = free_port()
    degraded = {**env, "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"}
    client = bootstrap_tenant(degraded)
    log = tmp_path / "server.log"
    server = Server(degraded).start(log)
    try:
        status, body = _token(server, client)
        assert status == 200, body
        headers = {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}
        assert (
            server.request(
                "POST",
                "/v1/flags",
                {"key": "resilient", "state": "on", "default": {"variant": "on"}},
                headers,
            )[0]
            == 201
        )
        user = {"flag_key": "resilient", "user": {"id": "u-1"}}
        status, _, result = server.request("POST", "/v1/evaluate", user, headers)
        assert status == 200 and result["reason"] == "DEFAULT", result
        assert server.request("PATCH", "/v1/flags/resilient", {"state": "off"}, headers)[0] == 200
        assert server.request("POST", "/v1/evaluate", user, headers)[2]["reason"] == "OFF", "read your writes"
        assert server.request("GET", "/readyz")[0] == 200
    finally:
        server.stop()
    assert "Connection refused" in log.read_text() or "Error 111" in log.read_text(), "the outage is logged"
