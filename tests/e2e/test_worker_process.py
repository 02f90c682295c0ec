"""`manage.py run_worker` as real processes on PostgreSQL: `kill -9` in the middle of a delivery loses
nothing, and two workers never send the same attempt at once (ADR 0013)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import PYTHON, ROOT, Server, manage, service_env
from tests.receiver import HANG, running_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def worker_env(database: str, **extra: str) -> dict[str, str]:
    return service_env(
        database,
        WEBHOOK_ALLOW_PRIVATE_NETWORKS="1",
        WEBHOOK_TIMEOUT_SECONDS="2",
        WEBHOOK_LEASE_SECONDS="3",
        WEBHOOK_BACKOFF_BASE_SECONDS="0.2",
        WEBHOOK_BACKOFF_MAX_SECONDS="1",
        WORKER_POLL_SECONDS="0.1",
        **extra,
    )


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "manage.py", "run_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def admin_headers(server: Server, env: dict[str, str]) -> dict[str, str]:
    manage(env, "create_tenant", "acme")
    client = json.loads(
        manage(
            env,
            "create_api_client",
            "--tenant",
            "acme",
            "--json",
            "--scope",
            "admin",
            "--scope",
            "flags:write",
        )
    )
    status, _, body = server.request(
        "POST", "/v1/auth/token", {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": "acme"}


def deliveries(server: Server, headers: dict[str, str], webhook_id: str) -> list[dict[str, Any]]:
    status, _, body = server.request(
        "GET", f"/v1/webhooks/{webhook_id}/deliveries?limit=200", headers=headers
    )
    assert status == 200, body
    return list(body["results"])


def wait_until_settled(
    server: Server, headers: dict[str, str], webhook_id: str, count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = deliveries(server, headers, webhook_id)
        if len(found) == count and all(d["status"] != "pending" for d in found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"deliveries not settled in {timeout} s: {deliveries(server, headers, webhook_id)}")


def test_run_worker__kill_9_in_the_middle_of_a_delivery__retried_by_the_next_worker_and_delivered(
    database, tmp_path
):
    env = worker_env(database)
    manage(env, "migrate", "--noinput")
    server = Server(env).start(tmp_path / "server.log")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        headers = admin_headers(server, env)
        with running_receiver([HANG, 200]) as receiver:
            status, _, hook = server.request(
                "POST", "/v1/webhooks", {"url": receiver.url, "events": ["flag.*"]}, headers=headers
            )
            assert status == 201, hook
            assert server.request("POST", "/v1/flags", {"key": "checkout"}, headers=headers)[0] == 201

            workers.append(start_worker(env, tmp_path / "worker-1.log"))
            assert receiver.wait_for(1, timeout=30), "the first worker never sent the delivery"
            os.kill(workers[0].pid, signal.SIGKILL)  # in the middle: the receiver has not answered
            workers[0].wait(timeout=10)
            assert deliveries(server, headers, hook["id"])[0]["status"] == "pending"

            workers.append(start_worker(env, tmp_path / "worker-2.log"))
            (delivery,) = wait_until_settled(server, headers, hook["id"], 1)
            assert delivery["status"] == "succeeded" and delivery["last_status_code"] == 200
            assert delivery["attempts"] == 2
            ids = [r.headers["webhook-id"] for r in receiver.requests]
            assert ids == [delivery["event_id"]] * 2, "the same event, so the receiver can drop the repeat"
    finally:
        for worker in workers:
            stop(worker)
        server.stop()


def test_run_worker__two_workers__share_the_deliveries_and_never_send_one_attempt_twice(database, tmp_path):
    env = worker_env(database)
    manage(env, "migrate", "--noinput")
    server = Server(env).start(tmp_path / "server.log")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        headers = admin_headers(server, env)
        with running_receiver([200], delay=0.05) as receiver:
            status, _, hook = server.request(
                "POST", "/v1/webhooks", {"url": receiver.url, "events": ["flag.created"]}, headers=headers
            )
            assert status == 201, hook
            workers = [start_worker(env, tmp_path / f"worker-{n}.log", "--batch", "2") for n in (1, 2)]
            deadline = time.monotonic() + 30
            while not all("worker started" in (tmp_path / f"worker-{n}.log").read_text() for n in (1, 2)):
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.1)
            for n in range(40):
                assert server.request("POST", "/v1/flags", {"key": f"f-{n}"}, headers=headers)[0] == 201
            settled = wait_until_settled(server, headers, hook["id"], 40)
            assert {d["status"] for d in settled} == {"succeeded"}
            assert {d["attempts"] for d in settled} == {1}
            sent = Counter(r.headers["webhook-id"] for r in receiver.requests)
            assert len(sent) == 40 and set(sent.values()) == {1}, f"sent twice: {sent.most_common(3)}"
            assert set(receiver.max_in_flight_per_id.values()) == {1}
            logs = [(tmp_path / f"worker-{n}.log").read_text() for n in (1, 2)]
            assert all("webhook attempt" in log for log in logs), "both workers took part"
    finally:
        for worker in workers:
            stop(worker)
        server.stop()
