"""A real `manage.py run_worker` advances a rollout plan whose steps are seconds apart, and evaluation on the
real server serves each new split (ADR 0016). The one rollout test that waits on the wall clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.server import Server, bootstrap_tenant, manage
from tests.e2e.test_worker_process import start_worker, stop, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

USERS = [f"u-{i}" for i in range(200)]


def test_run_worker__advances_a_plan_step_by_step__evaluation_shows_each_split(database, tmp_path):
    env = worker_env(database)
    manage(env, "migrate", "--noinput")
    client = bootstrap_tenant(env)
    server = Server(env).start(tmp_path / "server.log")
    worker = None
    try:
        status, _, token = server.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        assert status == 200, token
        headers = {"Authorization": f"Bearer {token['access_token']}", "X-Tenant-ID": "acme"}
        flag = {"key": "checkout", "state": "on", "default": {"variant": "off"}}
        assert server.request("POST", "/v1/flags", flag, headers=headers)[0] == 201

        def share_on() -> float:
            answers = [
                server.request(
                    "POST", "/v1/evaluate", {"flag_key": "checkout", "user": {"id": u}}, headers=headers
                )
                for u in USERS
            ]
            assert all(status == 200 for status, _, _ in answers), answers[0]
            return sum(body["variant"] == "on" for _, _, body in answers) / len(USERS)

        start = datetime.now(UTC)
        steps = [
            {"at": (start + timedelta(seconds=3)).isoformat(), "percentage": 50},
            {"at": (start + timedelta(seconds=9)).isoformat(), "percentage": 100},
        ]
        status, _, plan = server.request(
            "POST",
            "/v1/flags/checkout/rollouts",
            {"target": "default", "variant": "on", "steps": steps},
            headers=headers,
        )
        assert status == 201, plan
        assert share_on() == 0
        worker = start_worker(env, tmp_path / "worker.log")

        def plan_now() -> dict:
            return server.request("GET", f"/v1/flags/checkout/rollouts/{plan['id']}", headers=headers)[2]

        deadline = time.monotonic() + 40
        while plan_now()["current_step"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        midway = plan_now()
        assert midway["current_step"] >= 1, midway
        assert midway["current_step"] == 1, "the second step is 6 s later"
        assert 0.35 < share_on() < 0.65
        assert plan_now()["current_step"] == 1, "the split was measured between the steps"
        while plan_now()["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.2)
        done = plan_now()
        assert done["status"] == "completed", done
        assert share_on() == 1
        assert all(step["state"] == "applied" for step in done["steps"]), done["steps"]
        _, _, versions = server.request("GET", "/v1/flags/checkout/versions", headers=headers)
        assert [v["actor"] for v in versions["results"]][:2] == ["system:rollout", "system:rollout"]
    finally:
        if worker is not None:
            stop(worker)
        server.stop()
