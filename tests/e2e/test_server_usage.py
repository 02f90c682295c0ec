"""Usage counting across real processes: two gunicorn servers of two workers each count their own
evaluations and flush them in batches; the counts in the database add up to exactly what was served,
including what a worker still held when it was stopped (gunicorn's worker_exit flush)."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

FLAG = {"key": "counted", "state": "on", "default": {"variant": "on"}}


def _headers(server: Server, client: dict[str, str]) -> dict[str, str]:
    _, _, body = server.request(
        "POST", "/v1/auth/token", {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}


def _counted(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(n), 0) FROM usage_usagecount WHERE flag_key = 'counted'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_evaluations_in_two_servers_of_two_workers_add_up_exactly(database, tmp_path):
    env = service_env(database)
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    # One server flushes every half second; the other only when its workers stop.
    flushing = Server({**env, "USAGE_FLUSH_SECONDS": "0.5"}).start(tmp_path / "a.log", workers=2, threads=2)
    holding = Server({**env, "USAGE_FLUSH_SECONDS": "3600"}).start(tmp_path / "b.log", workers=2, threads=2)
    try:
        headers = _headers(flushing, client)
        status, _, _ = flushing.request("POST", "/v1/flags", FLAG, headers)
        assert status == 201
        served = {"flushing": 0, "holding": 0}
        deadline = time.monotonic() + 10
        i = 0
        # Until each server has served 30 (the other server learns of the new flag within its check
        # interval; a 404 before that is not an evaluation and is not counted).
        while min(served.values()) < 30 and time.monotonic() < deadline:
            name, server = (("flushing", flushing), ("holding", holding))[i % 2]
            i += 1
            if served[name] == 30:
                continue
            status, _, body = server.request(
                "POST", "/v1/evaluate", {"flag_key": "counted", "user": {"id": f"u-{i}"}}, headers
            )
            if status == 200:
                assert body["variant"] == "on"
                served[name] += 1
            else:
                assert status == 404, body
                time.sleep(0.05)
        assert served == {"flushing": 30, "holding": 30}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _counted(database) < 30:
            time.sleep(0.2)
        time.sleep(1)
        assert _counted(database) == 30, "the flushing server's 30, by its background threads"
    finally:
        flushing.stop()
        holding.stop()
    assert _counted(database) == 60, "the holding server's 30 were written as its workers exited"
