"""Real gunicorn processes sharing a real PostgreSQL (and Redis): cross-process freshness, outages."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from tests.e2e.conftest import ADMIN_URL
from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

FLAG = {"key": "fresh", "state": "on", "rules": [], "default": {"variant": "on"}}
USER = {"flag_key": "fresh", "user": {"id": "u-1"}}


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _headers(server: Server, client: dict[str, str]) -> dict[str, str]:
    _, _, body = server.request(
        "POST", "/v1/auth/token", {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}


def _seconds_until_seen(
    reader: Server, headers: dict[str, str], expected_reason: str, limit: float
) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        _, _, body = reader.request("POST", "/v1/evaluate", USER, headers)
        if body.get("reason") == expected_reason:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def _two_servers(env: dict[str, str], tmp_path: Path) -> tuple[Server, Server]:
    return Server(env).start(tmp_path / "a.log"), Server(env).start(tmp_path / "b.log")


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "database-only"])
def test_a_write_in_one_process_is_seen_by_another_within_one_second(database, tmp_path, with_redis):
    extra = {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}"} if with_redis else {}
    if with_redis and not _redis_available():
        pytest.fail("Redis is not reachable at 127.0.0.1:6379; the cross-process test needs it")
    env = service_env(database, **extra)
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    writer, reader = _two_servers(env, tmp_path)
    try:
        headers = _headers(writer, client)
        assert writer.request("POST", "/v1/flags", FLAG, headers)[0] == 201
        assert _seconds_until_seen(reader, headers, "DEFAULT", 5.0) is not None
        for _ in range(3):
            reader.request("POST", "/v1/evaluate", USER, headers)
        status, _, _ = writer.request("PATCH", "/v1/flags/fresh", {"state": "off"}, headers)
        assert status == 200
        seen_after = _seconds_until_seen(reader, headers, "OFF", 1.0)
        assert seen_after is not None, "the other process still served the old rules after 1 s"
    finally:
        writer.stop()
        reader.stop()


def test_database_goes_away__readyz_503_evaluation_serves__and_comes_back(database, tmp_path):
    env = service_env(database, RULESET_CHECK_INTERVAL="0.2", API_CLIENT_CHECK_INTERVAL="0.2")
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    server = Server(env).start(tmp_path / "server.log")
    name = database.rsplit("/", 1)[1]
    try:
        headers = _headers(server, client)
        assert server.request("POST", "/v1/flags", FLAG, headers)[0] == 201
        assert server.request("POST", "/v1/evaluate", USER, headers)[2]["reason"] == "DEFAULT"
        assert server.request("GET", "/readyz")[0] == 200
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        time.sleep(0.5)
        status, _, reason = server.request("GET", "/readyz")
        assert status == 503
        assert "database" in reason
        status, _, body = server.request("POST", "/v1/evaluate", USER, headers)
        assert status == 200 and body["reason"] == "DEFAULT", body
        status, _, body = server.request("PATCH", "/v1/flags/fresh", {"state": "off"}, headers)
        assert status == 503 and body["error"]["code"] == "unavailable"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 10
        while server.request("GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.request("GET", "/readyz")[0] == 200
        assert server.request("PATCH", "/v1/flags/fresh", {"state": "off"}, headers)[0] == 200
    finally:
        server.stop()
