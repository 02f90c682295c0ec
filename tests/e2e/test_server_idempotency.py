"""`Idempotency-Key` across real gunicorn worker processes on PostgreSQL: one key, one piece of work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest

from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

CONCURRENT = 20


def test_idempotency_key__twenty_concurrent_posts_over_two_workers__one_flag_one_audit_row(
    database: str,
    tmp_path: Path,
):
    env = service_env(database)
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    server = Server(env).start(tmp_path / "server.log", workers=2)
    try:
        _, _, token = server.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        headers = {
            "Authorization": f"Bearer {token['access_token']}",
            "X-Tenant-ID": client["tenant"],
            "Idempotency-Key": "one-key",
        }
        barrier = Barrier(CONCURRENT)

        def create(number: int) -> int:
            barrier.wait()
            body = {"key": f"race-{number}", "state": "on"}
            return server.request("POST", "/v1/flags", body, headers)[0]

        with ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = sorted(pool.map(create, range(CONCURRENT)))

        assert statuses == [201] + [409] * (CONCURRENT - 1)
        reader = {name: value for name, value in headers.items() if name != "Idempotency-Key"}
        _, _, flags = server.request("GET", "/v1/flags", None, reader)
        assert flags["count"] == 1
        _, _, audit = server.request("GET", "/v1/audit", None, reader)
        assert [entry["action"] for entry in audit["results"]] == ["create"]
    finally:
        server.stop()
