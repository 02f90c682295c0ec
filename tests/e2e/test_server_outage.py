"""Evaluation during a PostgreSQL outage, in workers that start while the database is down (ADR 0007).

Real gunicorn on a fresh PostgreSQL database, with the last known rulesets in Redis or in a local
directory. The tenant is warmed, the database refuses connections, every worker is killed with
SIGKILL (gunicorn starts new ones) and a brand new server process starts: every evaluation still
answers 200 with the variants the database would give, writes answer 503, and once the database is
back a write is seen again.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.conftest import allow_connections
from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKERS = 3
USERS = [f"user-{index}" for index in range(40)]

SEGMENT = {"key": "staff", "when": {"attr": "email", "op": "ends_with", "value": "@acme.test"}}
BANNER = {
    "key": "banner",
    "type": "string",
    "state": "on",
    "variants": [
        {"key": "blue", "value": "#00f", "weight": 50},
        {"key": "green", "value": "#0f0", "weight": 50},
        {"key": "red", "value": "#f00", "weight": 0},
    ],
    "off_variant": "blue",
    "targets": {"allow": ["user-7"], "allow_variant": "red"},
    "rules": [{"id": "staff", "when": {"segment": "staff"}, "serve": {"variant": "green"}}],
    "default": None,
}
CHECKOUT = {"key": "checkout", "state": "on", "rules": [], "default": {"variant": "on"}}


def _user(user_id: str) -> dict[str, Any]:
    email = f"{user_id}@acme.test" if user_id.endswith("3") else f"{user_id}@example.test"
    return {"id": user_id, "attributes": {"email": email}}


def _headers(server: Server, client: dict[str, str]) -> dict[str, str]:
    status, _, body = server.request(
        "POST", "/v1/auth/token", {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}


def _answers(server: Server, headers: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Every user's variant of `banner` (single) and of every flag (bulk), asserting 200 each time."""
    single: dict[str, str] = {}
    bulk: dict[str, dict[str, str]] = {}
    for user_id in USERS:
        status, _, body = server.request(
            "POST", "/v1/evaluate", {"flag_key": "banner", "user": _user(user_id)}, headers
        )
        assert status == 200, (user_id, status, body)
        single[user_id] = body["variant"]
        status, _, body = server.request("POST", "/v1/evaluate/bulk", {"user": _user(user_id)}, headers)
        assert status == 200, (user_id, status, body)
        bulk[user_id] = {key: result["variant"] for key, result in body["flags"].items()}
    return single, bulk


def _worker_pids(master: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after its closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            children.add(int(entry.name))
    return children


def _kill_every_worker(server: Server) -> None:
    assert server.process is not None
    master = server.process.pid
    old = _worker_pids(master)
    assert len(old) == WORKERS, old
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = _worker_pids(master)
        if len(current) == WORKERS and not current & old:
            return
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not replace its workers: {old} -> {_worker_pids(master)}")


def _service_env(database: str, tmp_path: Path, store: str) -> dict[str, str]:
    extra = {
        "RULESET_CHECK_INTERVAL": "0.2",
        "API_CLIENT_CHECK_INTERVAL": "0.2",
        "LAST_KNOWN_DIR": str(tmp_path / "last-known"),
    }
    if store == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}; the outage test needs it")
        extra |= {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}"}
    return service_env(database, **extra)


def _kept_rulesets(env: dict[str, str], tmp_path: Path, store: str) -> set[str]:
    """The tenants whose ruleset is kept, in the store the configuration names (and only there)."""
    files = {path.parent.name for path in (tmp_path / "last-known").rglob("ruleset.json")}
    if store == "file":
        return files
    assert files == set(), "with Redis, nothing is written to the directory"
    pattern = f"{env['REDIS_KEY_PREFIX']}:last-known:*:ruleset"
    return {key.decode().split(":")[-2] for key in redis.Redis.from_url(REDIS_URL).scan_iter(pattern)}


@pytest.mark.parametrize("store", ["redis", "file"])
def test_database_outage__restarted_and_new_workers__evaluate_from_the_last_known_rulesets(
    database, tmp_path, store
):
    env = _service_env(database, tmp_path, store)
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    revoked = bootstrap_tenant(env, "globex")
    server = Server(env).start(tmp_path / "server.log", workers=WORKERS)
    newcomer = Server(env)
    name = database.rsplit("/", 1)[1]
    try:
        headers = _headers(server, client)
        revoked_headers = _headers(server, revoked)
        assert server.request("POST", "/v1/segments", SEGMENT, headers)[0] == 201
        assert server.request("POST", "/v1/flags", BANNER, headers)[0] == 201
        assert server.request("POST", "/v1/flags", CHECKOUT, headers)[0] == 201
        assert server.request("POST", "/v1/flags", CHECKOUT, revoked_headers)[0] == 201
        time.sleep(0.5)  # past RULESET_CHECK_INTERVAL: every worker compiles the current version
        expected = _answers(server, headers)
        assert set(expected[0].values()) == {"blue", "green", "red"}, "the users cover every branch"
        evaluate_revoked = {"flag_key": "checkout", "user": _user("user-1")}
        assert server.request("POST", "/v1/evaluate", evaluate_revoked, revoked_headers)[0] == 200
        manage(env, "revoke_api_client", revoked["client_id"])
        time.sleep(0.5)
        for _ in range(2 * WORKERS):
            assert server.request("POST", "/v1/evaluate", evaluate_revoked, revoked_headers)[0] == 401
        assert _kept_rulesets(env, tmp_path, store) == {"acme", "globex"}

        allow_connections(name, allow=False)
        _kill_every_worker(server)
        newcomer.start(tmp_path / "newcomer.log", workers=1)
        assert server.request("GET", "/readyz")[0] == 503, "the database is really down"

        for _ in range(2):  # 2 x 80 requests spread over three new workers
            assert _answers(server, headers) == expected
        assert _answers(newcomer, headers) == expected
        for target in (server, newcomer):
            status, _, body = target.request("POST", "/v1/evaluate", evaluate_revoked, revoked_headers)
            assert status == 401, "a revoked client stays revoked in a process that never saw the database"
            status, _, body = target.request("PATCH", "/v1/flags/checkout", {"state": "off"}, headers)
            assert status == 503 and body["error"]["code"] == "unavailable", body

        allow_connections(name, allow=True)
        deadline = time.monotonic() + 15
        while server.request("GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, _, body = server.request("PATCH", "/v1/flags/checkout", {"state": "off"}, headers)
        assert status == 200, body
        time.sleep(0.5)
        user = {"flag_key": "checkout", "user": _user("user-1")}
        for target in (server, newcomer):
            reasons = [target.request("POST", "/v1/evaluate", user, headers)[2]["reason"] for _ in range(12)]
            assert reasons == ["OFF"] * 12, "the database wins once it is back"
    finally:
        newcomer.stop()
        server.stop()
        if store == "redis":
            kept = redis.Redis.from_url(REDIS_URL)
            for key in kept.scan_iter(f"{env['REDIS_KEY_PREFIX']}:*"):
                kept.delete(key)
