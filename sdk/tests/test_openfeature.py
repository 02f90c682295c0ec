"""FlagServiceProvider through the unmodified ``openfeature-sdk`` client API, against the local
``fake_service``: values, reasons and metadata as rules.md maps them, strict types, errors and
events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openfeature")

from fake_service import CLIENT_ID, CLIENT_SECRET, FakeService, running, simple_flag
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import Reason

from flagsvc_sdk import FlagClient
from flagsvc_sdk.openfeature import FlagServiceProvider

FLAGS = [
    simple_flag("static-on", default={"variant": "on"}),
    simple_flag("off-flag", on=False),
    simple_flag(
        "rollout",
        variants=[
            {"key": "on", "value": True, "weight": 50},
            {"key": "off", "value": False, "weight": 50},
        ],
        rules=[
            {
                "id": "nl",
                "when": {"attr": "country", "op": "eq", "value": "NL"},
                "serve": {"variant": "on"},
            }
        ],
        targets={"allow": [], "deny": ["u-denied"]},
    ),
    {
        "key": "limit",
        "type": "number",
        "state": "on",
        "version": 4,
        "variants": [
            {"key": "ten", "value": 10, "weight": 1},
            {"key": "half", "value": 0.5, "weight": 0},
        ],
        "off_variant": "half",
    },
    {
        "key": "layout",
        "type": "json",
        "state": "on",
        "version": 1,
        "variants": [{"key": "grid", "value": {"columns": 3}, "weight": 1}],
        "off_variant": "grid",
    },
    {
        "key": "by-account",
        "state": "on",
        "version": 1,
        "bucket_by": "account_id",
        "variants": [
            {"key": "on", "value": True, "weight": 1},
            {"key": "off", "value": False, "weight": 1},
        ],
    },
]


@pytest.fixture
def service() -> Iterator[FakeService]:
    started = FakeService()
    started.flags = FLAGS
    with running(started) as serving:
        yield serving


@pytest.fixture
def provider(service: FakeService) -> Iterator[FlagServiceProvider]:
    made = FlagServiceProvider(
        base_url=service.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        tenant=service.tenant,
        poll_interval=60,
    )
    api.set_provider_and_wait(made)
    yield made
    api.shutdown()


def context(targeting_key: str | None = "u-1", **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=targeting_key, attributes=attributes)


def test_provider__values_reasons_and_metadata__as_rules_md_maps_them(
    provider: FlagServiceProvider,
) -> None:
    client = api.get_client()
    static = client.get_boolean_details("static-on", False, context())
    assert (static.value, static.variant, static.reason) == (True, "on", Reason.STATIC)
    assert static.flag_metadata["reason"] == "DEFAULT"
    off = client.get_boolean_details("off-flag", True, context())
    assert (off.value, off.reason, off.flag_metadata["reason"]) == (False, Reason.DISABLED, "OFF")
    matched = client.get_boolean_details("rollout", False, context(country="NL"))
    assert (matched.value, matched.reason, matched.flag_metadata["rule_id"]) == (
        True,
        "TARGETING_MATCH",
        "nl",
    )
    denied = client.get_boolean_details("rollout", True, context("u-denied"))
    assert (denied.value, denied.reason, denied.flag_metadata["target"]) == (
        False,
        "TARGETING_MATCH",
        "deny",
    )
    split = client.get_boolean_details("rollout", False, context("u-7", country="DE"))
    assert split.reason == Reason.SPLIT
    assert isinstance(split.flag_metadata["bucket"], float)
    assert split.flag_metadata["flag_version"] == 1
    local = provider.client.evaluate("rollout", {"id": "u-7", "attributes": {"country": "DE"}})
    assert (split.value, split.variant) == (local.value, local.variant)
    assert client.get_integer_value("limit", 0, context()) == 10
    assert client.get_float_value("limit", 0.0, context()) == 10.0
    assert isinstance(client.get_float_value("limit", 0.0, context()), float)
    assert client.get_object_value("layout", {}, context()) == {"columns": 3}


def test_provider__strict_types__default_with_type_mismatch(provider: FlagServiceProvider) -> None:
    client = api.get_client()
    for details in (
        client.get_string_details("static-on", "fallback", context()),
        client.get_integer_details("static-on", 7, context()),  # a bool is not an integer
        client.get_boolean_details("limit", True, context()),
        client.get_object_details("limit", {"d": 1}, context()),
    ):
        assert details.reason == Reason.ERROR
        assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_string_value("static-on", "fallback", context()) == "fallback"


def test_provider__errors__mapped_to_openfeature_codes(provider: FlagServiceProvider) -> None:
    client = api.get_client()
    missing = client.get_boolean_details("missing", True, context())
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    no_key = client.get_boolean_details("static-on", False, context(None))
    assert (no_key.value, no_key.error_code) == (False, ErrorCode.TARGETING_KEY_MISSING)
    too_long = client.get_boolean_details("static-on", False, context("u" * 300))
    assert (too_long.value, too_long.error_code) == (False, ErrorCode.INVALID_CONTEXT)
    unbucketable = client.get_boolean_details("by-account", True, context())
    assert unbucketable.reason == Reason.ERROR  # served the off variant, as the server does
    assert unbucketable.flag_metadata["error_code"] == "NOT_BUCKETABLE"


def test_provider__no_snapshot__not_ready_then_ready_event_when_one_arrives(
    service: FakeService,
) -> None:
    service.stream = False
    client = FlagClient(
        service.url, CLIENT_ID, CLIENT_SECRET, "acme", start=False, poll_interval=0.1
    )
    provider = FlagServiceProvider(client, ready_timeout=0.1)
    ready = threading.Event()
    try:
        with pytest.raises(ProviderNotReadyError):
            api.set_provider_and_wait(provider)
        details = api.get_client().get_boolean_details("static-on", True, context())
        assert (details.value, details.reason) == (True, Reason.ERROR)

        def handler(details: Any) -> None:
            ready.set()

        api.add_handler(ProviderEvent.PROVIDER_READY, handler)
        client.start()
        assert ready.wait(3)
        after = api.get_client().get_boolean_details("static-on", False, context())
        assert (after.value, after.reason) == (True, Reason.STATIC)
        api.remove_handler(ProviderEvent.PROVIDER_READY, handler)
    finally:
        api.shutdown()
        client.close()


def test_provider__write__configuration_changed_event_and_new_value(
    service: FakeService, provider: FlagServiceProvider
) -> None:
    changed = threading.Event()

    def handler(details: Any) -> None:
        changed.set()

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    try:
        service.publish([simple_flag("static-on", on=False, version=2, default={"variant": "on"})])
        assert changed.wait(2)
        assert api.get_client().get_boolean_value("static-on", True, context()) is False
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
