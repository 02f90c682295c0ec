"""The SDK against real processes (gunicorn, the stream process, PostgreSQL): a write reaches it
within a second through the stream; it keeps serving while the service is down and catches up when
it returns; it converges on a restored database without a restart of its own; it refuses a tampered
snapshot; it starts from `manage.py publish_snapshot`'s files; a forked child follows changes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from flagsvc_sdk import FlagClient

from tests.e2e.server import manage
from tests.e2e.stack import ServiceStack

pytestmark = pytest.mark.e2e

USER = {"id": "u-42", "attributes": {"plan": "free"}}


@pytest.fixture(scope="module")
def seeded(service_stack: ServiceStack) -> tuple[ServiceStack, dict[str, Any]]:
    client = service_stack.seed()
    headers = service_stack.headers(client)
    status, body = service_stack.call("POST", "/v1/flags", headers, {"key": "kill-switch", "state": "on"})
    assert status == 201, body
    return service_stack, client


def sdk_for(stack: ServiceStack, client: dict[str, Any], **options: Any) -> FlagClient:
    options.setdefault("events_url", stack.events_base)
    options.setdefault("trusted_keys", stack.trusted_keys)
    options.setdefault("max_backoff", 1.0)
    options.setdefault("poll_interval", 2.0)
    return FlagClient(stack.base, client["client_id"], client["client_secret"], client["tenant"], **options)


def set_state(stack: ServiceStack, client: dict[str, Any], key: str, state: str) -> None:
    status, body = stack.call("PATCH", f"/v1/flags/{key}", stack.headers(client), {"state": state})
    assert status == 200, body


def until(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, or ``None`` if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.005)
    return None


def test_sdk__write__reaches_the_sdk_through_the_stream_within_a_second(seeded: Any) -> None:
    stack, client = seeded
    with sdk_for(stack, client, poll_interval=60) as sdk:
        assert sdk.ready
        assert until(lambda: sdk.stats().get("stream_connects", 0) >= 1, 5) is not None
        delays = []
        for round_ in range(6):
            state = "off" if round_ % 2 == 0 else "on"
            started = time.monotonic()
            set_state(stack, client, "kill-switch", state)
            seen = until(lambda s=state: sdk.bool_value("kill-switch", USER, None) is (s == "on"), 3)  # type: ignore[arg-type,misc]
            assert seen is not None, sdk.stats()
            delays.append(time.monotonic() - started)
        # Within a second; on this shared 2-core machine (load 10 at times) one write of the six
        # may queue behind other work, so the slowest gets 2 s and every other one 1 s.
        assert sorted(delays)[-2] < 1.0, delays
        assert max(delays) < 2.0, delays
        assert sdk.stats().get("stream_connects") == 1  # not polling: the stream did it


def test_sdk__service_stopped__keeps_serving__catches_up_when_it_returns(seeded: Any) -> None:
    stack, client = seeded
    set_state(stack, client, "kill-switch", "on")
    with sdk_for(stack, client) as sdk:
        assert sdk.wait_until_ready(5)
        assert sdk.bool_value("kill-switch", USER, False) is True
        stack.stop()  # gunicorn and the stream process both gone
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert sdk.bool_value("kill-switch", USER, False) is True
            assert sdk.evaluate("kill-switch", USER).reason == "PERCENTAGE_ROLLOUT"
            time.sleep(0.05)
        assert sdk.stats().get("event_stream_failures", 0) + sdk.stats().get("snapshot_failures", 0) >= 1
        # The API returns, the stream not yet: the write is found by polling the snapshot.
        assert stack.web is not None
        stack.web.start(stack.logs / "web-again.log")
        set_state(stack, client, "kill-switch", "off")
        assert until(lambda: sdk.bool_value("kill-switch", USER, True) is False, 6) is not None
        # The stream returns: the next write arrives through it again.
        assert stack.stream is not None
        # Read before the start: start() waits for /healthz, and the SDK's retry may connect
        # in that time (CI saw it reconnect before the count was read, and wait in vain).
        connects = sdk.stats().get("stream_connects", 0)
        stack.stream.start(stack.logs / "stream-again.log")
        assert until(lambda: sdk.stats().get("stream_connects", 0) > connects, 6) is not None
        set_state(stack, client, "kill-switch", "on")
        assert until(lambda: sdk.bool_value("kill-switch", USER, False) is True, 1.5) is not None


def test_sdk__service_restarted_on_a_restored_database__converges_without_a_restart(seeded: Any) -> None:
    stack, client = seeded
    set_state(stack, client, "kill-switch", "on")
    stack.move_to_copy_of_database()  # the "backup": kill-switch on, no flag "after-backup"
    stack.start()
    with sdk_for(stack, client) as sdk:
        assert sdk.wait_until_ready(5)
        headers = stack.headers(client)
        status, _ = stack.call("POST", "/v1/flags", headers, {"key": "after-backup", "state": "on"})
        assert status == 201
        set_state(stack, client, "kill-switch", "off")
        assert until(lambda: sdk.bool_value("after-backup", USER, False) is True, 3) is not None
        assert until(lambda: sdk.bool_value("kill-switch", USER, True) is False, 3) is not None
        seen_version = sdk.ruleset_version
        stack.use_copy()  # the service comes back on the restored database, with a change of its own
        stack.start()
        status, _ = stack.call(
            "POST", "/v1/flags", stack.headers(client), {"key": "only-restored", "state": "on"}
        )
        assert status == 201
        converged = until(
            lambda: (
                sdk.bool_value("only-restored", USER, False) is True
                and sdk.evaluate("after-backup", USER).error_code == "FLAG_NOT_FOUND"
                and sdk.bool_value("kill-switch", USER, False) is True
            ),
            8,
        )
        assert converged is not None, (seen_version, sdk.ruleset_version, sdk.stats())


class TamperingProxy:
    """Forwards to the service and flips the first `true` of every snapshot body to `false`,
    keeping the signature header: what a compromised cache or CDN would do."""

    def __init__(self, target: str) -> None:
        upstream = httpx.Client(base_url=target, timeout=10)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                content = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "accept-encoding")
                }
                response = upstream.request(method, self.path, content=content, headers=headers)
                body = response.content
                if self.path.startswith("/v1/snapshot") and not self.path.startswith("/v1/snapshot/keys"):
                    body = body.replace(b"true", b"false", 1)
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in (
                        "content-length",
                        "content-encoding",
                        "transfer-encoding",
                        "connection",
                    ):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sdk__tampered_snapshot__refused(seeded: Any) -> None:
    stack, client = seeded
    proxy = TamperingProxy(stack.base)
    try:
        tampered = FlagClient(
            proxy.url,
            client["client_id"],
            client["client_secret"],
            client["tenant"],
            stream=False,
            start_wait=2,
        )
        with tampered:
            assert not tampered.ready
            assert tampered.stats()["signature_failures"] >= 1
            assert tampered.evaluate("kill-switch", USER).error_code == "PROVIDER_NOT_READY"
        # Keys pinned to another key: the service's own snapshot is refused too.
        other = sdk_for(stack, client, trusted_keys={stack.kid: "A" * 43}, start_wait=2)
        with other:
            assert not other.ready
            assert other.stats()["signature_failures"] >= 1
    finally:
        proxy.close()


def free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_sdk__bootstrap_from_publish_snapshot__serves_with_no_service(seeded: Any, tmp_path: Path) -> None:
    stack, client = seeded
    manage(stack.env, "publish_snapshot", "--tenant", client["tenant"], "--to", str(tmp_path))
    keys = json.loads((tmp_path / "keys.json").read_text())
    with sdk_for(stack, client) as live:
        assert live.wait_until_ready(5)
        expected = {key: result.to_dict() for key, result in live.all_flags(USER).items()}
    offline = FlagClient(
        free_url(),
        client["client_id"],
        client["client_secret"],
        client["tenant"],
        bootstrap=tmp_path,
        trusted_keys=keys,
        start_wait=0,
        timeout=0.5,
    )
    with offline:
        assert offline.ready
        assert offline.source == "bootstrap"
        assert {key: result.to_dict() for key, result in offline.all_flags(USER).items()} == expected
    body = (tmp_path / "snapshot.json").read_bytes()
    (tmp_path / "snapshot.json").write_bytes(body.replace(b"true", b"false", 1))
    refused = FlagClient(
        free_url(),
        client["client_id"],
        client["client_secret"],
        client["tenant"],
        bootstrap=tmp_path / "snapshot.json",
        trusted_keys=keys,
        start_wait=0,
        timeout=0.5,
    )
    with refused:
        assert not refused.ready
        assert refused.stats()["signature_failures"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_sdk__forked_child__restarts_its_thread_and_follows_writes(seeded: Any) -> None:
    stack, client = seeded
    set_state(stack, client, "kill-switch", "on")
    with sdk_for(stack, client) as sdk:  # made in the parent, as a gunicorn --preload app would
        assert sdk.wait_until_ready(5)
        assert sdk.bool_value("kill-switch", USER, False) is True
        results, go = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.read(go[0], 1)
                seen = until(lambda: sdk.bool_value("kill-switch", USER, True) is False, 5)
                os.write(results[1], json.dumps({"seen": seen, "forks": sdk.stats().get("forks")}).encode())
                code = 0
            finally:
                os._exit(code)
        time.sleep(1.0)  # the child's thread connects its stream and loads its snapshot
        set_state(stack, client, "kill-switch", "off")
        os.write(go[1], b"x")
        answer = json.loads(os.read(results[0], 1000))
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert answer["forks"] == 1
        assert answer["seen"] is not None
