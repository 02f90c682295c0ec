"""Usage reports and exposures (``flagsvc_sdk.reporting``) from a FlagClient against a real
local HTTP server (``fake_service``): what is counted, batched, retried with the same id, bounded,
and what a forked child reports."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fake_service import CLIENT_ID, CLIENT_SECRET, FakeService, running, simple_flag

from flagsvc_sdk import FlagClient
from flagsvc_sdk.engine import compile_ruleset
from flagsvc_sdk.reporting import ExposureQueue, UsageCounter

SPLIT = simple_flag(
    "split",
    variants=[
        {"key": "on", "value": True, "weight": 50},
        {"key": "off", "value": False, "weight": 50},
    ],
)


@pytest.fixture
def service() -> Iterator[FakeService]:
    with running() as started:
        started.flags = [simple_flag("checkout"), SPLIT]
        yield started


def make_client(service: FakeService, **options: Any) -> FlagClient:
    options.setdefault("poll_interval", 5.0)
    options.setdefault("report_interval", 0)  # flushed by hand unless a test says otherwise
    return FlagClient(service.url, CLIENT_ID, CLIENT_SECRET, service.tenant, **options)


def user(i: int) -> dict[str, Any]:
    return {"id": f"u-{i}", "attributes": {}}


def reported(service: FakeService, path: str = "/v1/usage") -> list[dict[str, Any]]:
    return [body for where, body in service.reports if where == path]


def totals(bodies: list[dict[str, Any]]) -> Counter[tuple[str, str | None, str]]:
    """Counts by (flag, variant, reason), each batch id once (what the server would add)."""
    seen: set[str] = set()
    total: Counter[tuple[str, str | None, str]] = Counter()
    for body in bodies:
        if body["batch_id"] in seen:
            continue
        seen.add(body["batch_id"])
        for count in body["counts"]:
            total[(count["flag_key"], count["variant"], count["reason"])] += count["n"]
    return total


def test_usage__typed_calls_evaluate_and_all_flags__reported_once_each(
    service: FakeService,
) -> None:
    with make_client(service) as client:
        expected: Counter[str | None] = Counter()
        for i in range(200):
            expected[_variant(client, "split", i)] += 1
            client.bool_value("split", user(i), False)
        for i in range(7):
            assert client.evaluate("checkout", user(i)).variant == "on"
        client.all_flags(user(1))  # one answer of each flag
        expected[_variant(client, "split", 1)] += 1
        assert client.bool_value("checkout", user(1), False) is True
        client.bool_value("missing", user(1), False)  # no such flag: not counted
        assert client.string_value("checkout", user(1), "x") == "x"  # not a string: counted once
        assert client.flush() is True
    counts = totals(reported(service))
    assert counts[("split", "on", "PERCENTAGE_ROLLOUT")] == expected["on"]
    assert counts[("split", "off", "PERCENTAGE_ROLLOUT")] == expected["off"]
    assert counts[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 7 + 1 + 1 + 1
    assert not any(flag == "missing" for flag, _, _ in counts)
    hours = {count["hour"] for body in reported(service) for count in body["counts"]}
    assert all(hour.endswith(":00:00Z") for hour in hours)


def _variant(client: FlagClient, flag: str, i: int) -> str | None:
    ruleset = client._local.ruleset
    assert ruleset is not None
    from flagsvc_sdk.engine import evaluate  # not through the client: not counted

    return evaluate(ruleset, flag, user(i)).variant


def test_usage__nothing_served__sends_nothing(service: FakeService) -> None:
    with make_client(service) as client:
        assert client.flush() is True
    assert reported(service) == []


def test_usage__refused_for_now__retried_with_the_same_batch_id(service: FakeService) -> None:
    service.report_statuses = [503, 429, 202]
    with make_client(service) as client:
        for i in range(5):
            client.bool_value("checkout", user(i), False)
        assert client.flush() is False
        client.bool_value("checkout", user(9), False)  # counted after the batch was made
        assert client.flush() is False
        assert client.flush() is True  # the kept batch, accepted
        assert client.flush() is True  # then the newer counts, in a batch of their own
        stats = client.stats()
    bodies = reported(service)
    assert len(bodies) == 4
    assert bodies[0] == bodies[1] == bodies[2], "a retry sends the same batch, id and all"
    assert bodies[3]["batch_id"] != bodies[0]["batch_id"]
    assert totals(bodies)[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 6
    assert stats["usage_send_failures"] == 2
    assert stats["usage_batches_sent"] == 2


def test_usage__refused_for_good__dropped_and_counted(service: FakeService) -> None:
    service.report_statuses = [422, 202]
    with make_client(service) as client:
        client.bool_value("checkout", user(1), False)
        assert client.flush() is True
        assert client.flush() is True
        assert client.stats()["usage_batches_refused"] == 1
    assert len(reported(service)) == 1


def test_usage__service_unreachable__never_raises_into_the_caller(service: FakeService) -> None:
    client = make_client(service)
    try:
        client.bool_value("checkout", user(1), False)
        service.stop()
        assert client.flush() is False
        assert client.bool_value("checkout", user(1), False) is True
        assert client.stats()["usage_pending"] == 1
    finally:
        client.close(timeout=1)


def test_usage__background_thread__reports_every_interval(service: FakeService) -> None:
    with make_client(service, report_interval=0.1) as client:
        client.bool_value("checkout", user(1), False)
        with service.changed:
            assert service.changed.wait_for(lambda: reported(service), timeout=5)
    assert totals(reported(service))[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 1


def test_usage__close__sends_what_is_left(service: FakeService) -> None:
    client = make_client(service, report_interval=3600)
    for i in range(3):
        client.bool_value("checkout", user(i), False)
    client.close()
    assert totals(reported(service))[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 3


def test_usage__new_snapshot__answers_of_the_old_one_still_reported(
    service: FakeService,
) -> None:
    with make_client(service, poll_interval=0.1, stream=False) as client:
        client.bool_value("checkout", user(1), False)
        client.bool_value("checkout", user(2), False)
        service.publish([simple_flag("checkout", on=False, version=2), SPLIT])
        assert client.wait_for_version("2", 5)
        client.bool_value("checkout", user(3), False)
        client.flush()
        client.flush()
    counts = totals(reported(service))
    assert counts[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 2
    assert counts[("checkout", "off", "OFF")] == 1


def test_usage_counter__bounded__drops_and_counts() -> None:
    flags = [simple_flag(f"f{i}", default={"variant": "on"}) for i in range(5)]
    ruleset = compile_ruleset(tenant="acme", version="1", flags=flags, segments=[])
    counter = UsageCounter(max_pending=3)
    for flag in ruleset.flags.values():
        flag.default_outcome.served += 2  # type: ignore[union-attr]
    counter.harvest(ruleset, time.time())
    assert counter.pending == 3
    assert counter.dropped == 4  # two flags' two evaluations each
    batch = counter.take_batch()
    assert batch is not None
    assert len(batch.items) == 3
    assert counter.take_batch() is batch, "not accepted yet: the same batch again"


def test_exposures__off_by_default(service: FakeService) -> None:
    with make_client(service) as client:
        client.bool_value("checkout", user(1), False)
        client.flush()
    assert reported(service, "/v1/exposures") == []


def test_exposures__one_per_user_flag_and_variant__batched(service: FakeService) -> None:
    with make_client(service, exposures=True) as client:
        for _ in range(3):
            for i in range(4):
                assert client.bool_value("checkout", user(i), False) is True
        client.evaluate("checkout", user(0))
        client.all_flags(user(9))  # a listing is no exposure
        assert client.string_value("missing", user(1), "d") == "d"
        assert client.flush() is True
    bodies = reported(service, "/v1/exposures")
    assert len(bodies) == 1
    exposures = bodies[0]["exposures"]
    assert sorted(e["user_id"] for e in exposures) == ["u-0", "u-1", "u-2", "u-3"]
    assert {(e["flag_key"], e["variant"]) for e in exposures} == {("checkout", "on")}
    assert all(e["ts"].endswith("Z") for e in exposures)
    # Usage is still counted (once per call) with exposures on.
    assert totals(reported(service))[("checkout", "on", "PERCENTAGE_ROLLOUT")] == 12 + 1 + 1


def test_exposure_queue__period_passed__exposed_again() -> None:
    now = [1000.0]
    queue = ExposureQueue(period=60, clock=lambda: now[0])
    queue.record("u", "f", "on")
    queue.record("u", "f", "on")
    queue.record("u", "f", "off")  # another variant: another exposure
    now[0] += 61
    queue.record("u", "f", "on")
    batch = queue.take_batch()
    assert batch is not None
    assert [(e["variant"]) for e in batch.items] == ["on", "off", "on"]


def test_exposure_queue__full__drops_and_counts_and_the_lru_is_bounded() -> None:
    queue = ExposureQueue(period=3600, cache_size=10, queue_size=25)
    for i in range(40):
        queue.record(f"u-{i}", "f", "on")
    assert queue.pending == 25
    assert queue.dropped == 15
    assert len(queue._recent) == 10


def test_exposures__retried_batch_keeps_its_id(service: FakeService) -> None:
    service.report_statuses = [202, 500, 202]  # usage, then exposures twice
    with make_client(service, exposures=True) as client:
        client.bool_value("checkout", user(1), False)
        assert client.flush() is False
        assert client.flush() is True
    bodies = reported(service, "/v1/exposures")
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_usage__forked_child__reports_only_its_own_evaluations(service: FakeService) -> None:
    with make_client(service) as client:
        for i in range(5):
            client.bool_value("checkout", user(i), False)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker forked from a --preload parent
            code = 1
            try:
                os.close(read_end)
                for i in range(3):
                    client.bool_value("checkout", user(i), False)
                ok = client.flush()
                os.write(write_end, json.dumps(ok).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        assert json.loads(os.read(read_end, 100)) is True
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert client.flush() is True
    bodies = reported(service)
    assert sorted(body["counts"][0]["n"] for body in bodies) == [3, 5]
