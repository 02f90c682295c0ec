"""FlagClient against a real local HTTP server (``fake_service``): signature, refresh, fallbacks,
the evaluation path that never raises, files, fork and close."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_service import CLIENT_ID, CLIENT_SECRET, FakeService, SigningKey, running, simple_flag

from flagsvc_sdk import FlagClient
from flagsvc_sdk.engine import compile_ruleset, evaluate
from flagsvc_sdk.sse import EventParser

USER = {"id": "u-1", "attributes": {"country": "NL"}}


def make_client(service: FakeService, **options: Any) -> FlagClient:
    options.setdefault("poll_interval", 5.0)
    return FlagClient(service.url, CLIENT_ID, CLIENT_SECRET, service.tenant, **options)


@pytest.fixture
def service() -> Iterator[FakeService]:
    with running() as started:
        yield started


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_client__verified_snapshot__evaluates_as_the_engine(service: FakeService) -> None:
    service.flags = [
        simple_flag(
            "checkout",
            variants=[
                {"key": "on", "value": True, "weight": 30},
                {"key": "off", "value": False, "weight": 70},
            ],
            rules=[
                {
                    "id": "nl",
                    "when": {"attr": "country", "op": "eq", "value": "NL"},
                    "serve": {"variant": "on"},
                }
            ],
        )
    ]
    with make_client(service) as client:
        assert client.ready
        assert client.source == "service"
        engine = compile_ruleset(tenant="acme", version="1", flags=service.flags, segments=[])
        for user in (USER, {"id": "u-2"}, {"id": "u-3", "attributes": {"country": "DE"}}):
            expected = evaluate(engine, "checkout", {"attributes": {}, **user}).to_dict()
            assert client.evaluate("checkout", user).to_dict() == expected
            assert client.bool_value("checkout", user, default=None) is expected["value"]  # type: ignore[arg-type]
        assert set(client.all_flags(USER)) == {"checkout"}


def test_client__tampered_snapshot__refused_and_last_good_kept(service: FakeService) -> None:
    with make_client(service) as client:
        assert client.bool_value("checkout", USER, False) is True
        service.tamper = True
        version = service.publish([simple_flag("checkout"), simple_flag("other")])
        assert wait_until(lambda: client.stats().get("signature_failures", 0) >= 1)
        assert client.ruleset_version == "1"
        assert client.ruleset_version != version
        assert client.bool_value("checkout", USER, False) is True  # not the tampered "off"
        assert client.evaluate("other", USER).error_code == "FLAG_NOT_FOUND"


def test_client__pinned_key_that_did_not_sign__refuses_every_snapshot(service: FakeService) -> None:
    other = SigningKey("k1")
    with make_client(service, trusted_keys={"k1": other.public}, start_wait=1) as client:
        assert not client.ready
        assert client.stats()["signature_failures"] >= 1
        assert client.bool_value("checkout", USER, False) is False
        assert client.evaluate("checkout", USER).error_code == "PROVIDER_NOT_READY"
        assert "GET /v1/snapshot/keys" not in service.counts  # pinned: never fetched


def test_client__write__seen_through_the_stream_within_a_second(service: FakeService) -> None:
    with make_client(service, poll_interval=60) as client:
        assert client.bool_value("checkout", USER, True) is True
        assert wait_until(lambda: client.stats().get("stream_connects", 0) == 1)
        started = time.monotonic()
        version = service.publish([simple_flag("checkout", on=False, version=2)])
        assert client.wait_for_version(version, timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert client.bool_value("checkout", USER, True) is False
        assert service.counts.get("GET /v1/snapshot", 0) == 2  # one at connect, one for the event


def test_client__stream_not_served__falls_back_to_etag_polling(service: FakeService) -> None:
    service.stream = False  # what gunicorn answers (406) when events_url is not the stream process
    with make_client(service, poll_interval=0.2) as client:
        assert client.ready
        polls = service.counts["GET /v1/snapshot"]
        version = service.publish([simple_flag("checkout", on=False, version=2)])
        assert client.wait_for_version(version, timeout=2.0)
        assert wait_until(lambda: service.counts["GET /v1/snapshot"] >= polls + 3)
        assert client.stats()["snapshots_loaded"] == 2  # the other polls were 304s


def test_client__reset_event__refetches_the_snapshot(service: FakeService) -> None:
    with make_client(service, poll_interval=60) as client:
        client._cursor = "999999"  # a cursor the service does not know: the next connect resets
        before = service.counts["GET /v1/snapshot"]
        client._interrupt_stream()
        assert wait_until(lambda: client.stats().get("stream_connects", 0) >= 2)
        assert wait_until(lambda: service.counts["GET /v1/snapshot"] >= before + 2)


def test_client__token_rejected__renewed_once_and_retried(service: FakeService) -> None:
    service.stream = False
    with make_client(service, poll_interval=0.1) as client:
        tokens = service.counts["POST /v1/auth/token"]
        service.valid_tokens.clear()  # e.g. the JWT secret rotated
        version = service.publish([simple_flag("checkout", on=False, version=2)])
        assert client.wait_for_version(version, timeout=2.0)
        assert service.counts["POST /v1/auth/token"] == tokens + 1


def test_client__token__renewed_before_it_expires(service: FakeService) -> None:
    now = [1000.0]
    service.stream = False
    service.expires_in = 100
    with make_client(service, poll_interval=0.05, clock=lambda: now[0]) as client:
        assert wait_until(lambda: service.counts.get("GET /v1/snapshot", 0) >= 3)
        assert service.counts["POST /v1/auth/token"] == 1
        now[0] += 69  # renewed at min(80 % of its life, 30 s before its end) = 70 s
        time.sleep(0.2)
        assert service.counts["POST /v1/auth/token"] == 1
        now[0] += 2
        assert wait_until(lambda: service.counts["POST /v1/auth/token"] == 2)
        assert client.ready


def test_client__evaluation_problems__caller_default_with_error_code(service: FakeService) -> None:
    service.flags = [
        simple_flag("checkout"),
        {
            "key": "color",
            "type": "string",
            "state": "on",
            "variants": [{"key": "blue", "value": "blue", "weight": 1}],
            "off_variant": "blue",
            "version": 1,
        },
    ]
    with make_client(service) as client:
        cases = [
            ("missing", USER, "FLAG_NOT_FOUND"),
            ("checkout", {"attributes": {}}, "INVALID_CONTEXT"),
            ("checkout", {"id": ""}, "INVALID_CONTEXT"),
            ("checkout", "u-1", "INVALID_CONTEXT"),
            ("checkout", {"id": "u-1", "extra": 1}, "INVALID_CONTEXT"),
        ]
        for key, user, code in cases:
            result = client.evaluate(key, user, default="fallback")
            assert (result.variant, result.value, result.reason, result.error_code) == (
                None,
                "fallback",
                "ERROR",
                code,
            ), (key, user)
            assert client.bool_value(key, user, default=True) is True
            assert client.string_value(key, user, default="d") == "d"
        assert client.bool_value("color", USER, default=True) is True  # a string flag
        assert client.number_value("color", USER, default=7) == 7
        assert client.json_value("color", USER, default={"a": 1}) == {"a": 1}
        assert client.string_value("color", USER, default="d") == "blue"
        assert client.evaluate(None, USER).error_code == "FLAG_NOT_FOUND"  # type: ignore[arg-type]
        assert client.bool_value(["unhashable"], USER, False) is False  # type: ignore[arg-type]
        assert client.all_flags({"id": 3}) == {}
        errors = client.stats()["errors"]
        assert errors["TYPE_MISMATCH"] == 3
        assert errors["FLAG_NOT_FOUND"] >= 3


def test_client__never_served__provider_not_ready() -> None:
    client = FlagClient(
        closed_port_url(), CLIENT_ID, CLIENT_SECRET, "acme", start_wait=0.2, timeout=0.5
    )
    try:
        assert not client.ready
        result = client.evaluate("checkout", USER, default=True)
        assert (result.value, result.reason, result.error_code) == (
            True,
            "ERROR",
            "PROVIDER_NOT_READY",
        )
        assert client.bool_value("checkout", USER, default=True) is True
        assert client.all_flags(USER) == {}
    finally:
        client.close()


def test_client__last_good_snapshot__kept_on_disk_and_served_after_a_restart_in_an_outage(
    service: FakeService, tmp_path: Path
) -> None:
    version = service.publish([simple_flag("checkout", on=False, version=2)])
    with make_client(service, cache_dir=tmp_path) as first:
        assert first.ruleset_version == version
    assert (tmp_path / "acme.json").read_bytes() == service.signed()[0]
    url = service.url
    service.stop()
    restarted = FlagClient(
        url, CLIENT_ID, CLIENT_SECRET, "acme", cache_dir=tmp_path, start_wait=0.2, timeout=0.5
    )
    try:
        assert restarted.ready
        assert restarted.source == "cache"
        assert restarted.ruleset_version == version
        assert restarted.bool_value("checkout", USER, True) is False
    finally:
        restarted.close()


def test_client__tampered_cache_file__refused(service: FakeService, tmp_path: Path) -> None:
    with make_client(service, cache_dir=tmp_path):
        pass
    body = (tmp_path / "acme.json").read_bytes()
    (tmp_path / "acme.json").write_bytes(body.replace(b'"state": "on"', b'"state": "off"'))
    offline = FlagClient(
        closed_port_url(),
        CLIENT_ID,
        CLIENT_SECRET,
        "acme",
        cache_dir=tmp_path,
        start_wait=0.2,
        timeout=0.5,
    )
    try:
        assert not offline.ready
        assert offline.stats()["signature_failures"] == 1
    finally:
        offline.close()


def test_client__bootstrap_file__serves_before_the_service_answers(
    service: FakeService, tmp_path: Path
) -> None:
    body, signature = service.signed()
    (tmp_path / "acme.json").write_bytes(body)
    (tmp_path / "acme.json.sig").write_text(signature + "\n")
    keys = {service.key.kid: service.key.public}
    client = FlagClient(
        closed_port_url(),
        CLIENT_ID,
        CLIENT_SECRET,
        "acme",
        bootstrap=tmp_path,
        trusted_keys=keys,
        start_wait=0,
        timeout=0.5,
    )
    try:
        assert client.ready
        assert client.source == "bootstrap"
        assert client.bool_value("checkout", USER, False) is True
    finally:
        client.close()
    (tmp_path / "acme.json").write_bytes(body.replace(b'"state": "on"', b'"state": "off"'))
    tampered = FlagClient(
        closed_port_url(),
        CLIENT_ID,
        CLIENT_SECRET,
        "acme",
        bootstrap=tmp_path / "acme.json",
        trusted_keys=keys,
        start_wait=0,
        timeout=0.5,
    )
    try:
        assert not tampered.ready
        assert tampered.stats()["signature_failures"] == 1
    finally:
        tampered.close()


def test_client__snapshot_of_another_tenant__refused(service: FakeService) -> None:
    client = FlagClient(service.url, CLIENT_ID, CLIENT_SECRET, "acme", start=False)
    try:
        body, _signature = service.signed()
        other = json.loads(body) | {"tenant": "globex"}
        raw = json.dumps(other).encode()
        client._keys = {
            service.key.kid: __import__("flagsvc_sdk.signing").signing.public_key(
                service.key.public
            )
        }
        assert client._install(raw, service.key.header(raw), source="service") is False
        assert client.stats()["refused_snapshots"] == 1
        assert not client.ready
    finally:
        client.close()


def test_client__close__stops_the_stream_thread_promptly(service: FakeService) -> None:
    client = make_client(service, poll_interval=60)
    assert wait_until(lambda: client.stats().get("stream_connects", 0) == 1)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 1.0
    assert client._thread is not None
    assert not client._thread.is_alive()
    assert client.bool_value("checkout", USER, False) is True  # still answers from memory


def test_client__concurrent_evaluation_while_snapshots_swap__one_ruleset_per_call(
    service: FakeService,
) -> None:
    def flags(value: bool) -> list[dict[str, Any]]:
        return [simple_flag(f"f{i}", on=value, version=2) for i in range(20)]

    service.flags = flags(True)
    failures: list[Any] = []
    with make_client(service, poll_interval=60) as client:
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                answers = {r.value for r in client.all_flags(USER).values()}
                if len(answers) != 1:  # half of one snapshot and half of another
                    failures.append(answers)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        for round_ in range(10):
            version = service.publish(flags(round_ % 2 == 1))
            assert client.wait_for_version(version, 2.0)
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_client__forked_child__restarts_its_thread_and_gets_updates(service: FakeService) -> None:
    with make_client(service, poll_interval=60) as client:
        assert client.bool_value("checkout", USER, False) is True
        read_end, write_end = os.pipe()
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker forked from a --preload parent
            code = 1
            try:
                os.close(read_end)
                os.close(go_write)
                ok = client.wait_for_version("1", 2) and client._thread is not None
                os.read(go_read, 1)  # the parent writes only after this child is following
                seen = client.wait_for_version("2", 3.0) and ok
                os.write(
                    write_end,
                    json.dumps([seen, client.bool_value("checkout", USER, True)]).encode(),
                )
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        os.close(go_read)
        assert wait_until(lambda: service.counts.get("GET /v1/events", 0) >= 2)  # parent + child
        service.publish([simple_flag("checkout", on=False, version=2)])
        os.write(go_write, b"x")
        answer = os.read(read_end, 1000)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert json.loads(answer) == [True, False]


def test_client__logger__tells_why_a_snapshot_was_refused(
    service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    service.tamper = True
    with caplog.at_level(logging.ERROR, logger="flagsvc_sdk"), make_client(service, start_wait=1):
        pass
    assert any("does not verify" in record.getMessage() for record in caplog.records)


def test_event_parser__frames_comments_and_multiline_data() -> None:
    parser = EventParser()
    lines = [
        ": events",
        "",
        "id: 7",
        "event: flag.updated",
        'data: {"a":',
        "data: 1}",
        "",
        ": ka",
        "",
    ]
    frames = [frame for frame in (parser.feed(line) for line in lines) if frame is not None]
    assert len(frames) == 1
    assert (frames[0].id, frames[0].event, frames[0].data) == ("7", "flag.updated", '{"a":\n1}')
