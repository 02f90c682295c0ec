"""Rate limits hold across processes: two real gunicorn servers sharing one SQLite database, no Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.server import Server, manage, service_env

pytestmark = pytest.mark.e2e

TOKENS_PER_HOUR = 4
BAD_CREDENTIALS = {"client_id": "nobody", "client_secret": "wrong"}


def test_token_limit__two_processes_without_redis__count_one_limit_between_them(tmp_path: Path):
    env = service_env(f"sqlite:///{tmp_path / 'shared.sqlite3'}", RATE_LIMIT_TOKEN=f"{TOKENS_PER_HOUR}/hour")
    manage(env, "migrate", "--noinput")
    first = Server(env).start(tmp_path / "first.log")
    second = Server(env).start(tmp_path / "second.log")
    try:
        servers = [first, second] * TOKENS_PER_HOUR
        spoofed = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(len(servers))]
        statuses = [
            server.request("POST", "/v1/auth/token", BAD_CREDENTIALS, headers)[0]
            for server, headers in zip(servers, spoofed, strict=True)
        ]
        # Each process alone would have allowed four: it is the shared count that refuses.
        assert statuses == [401] * TOKENS_PER_HOUR + [429] * TOKENS_PER_HOUR
        status, headers, body = second.request("POST", "/v1/auth/token", BAD_CREDENTIALS)
        assert status == 429
        assert body["error"]["code"] == "rate_limited"
        assert int(headers["Retry-After"]) == int(body["error"]["details"]["retry_after"]) > 0
    finally:
        first.stop()
        second.stop()
