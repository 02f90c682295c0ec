"""The OFREP routes as their users meet them: the unmodified `openfeature-sdk` with the unmodified
`openfeature-provider-ofrep` from PyPI, over HTTP against a real server (pytest-django's `live_server`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openfeature.contrib.provider.ofrep as ofrep_provider
import pytest
from django.core import signals
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.api.test_ofrep import ofrep_flags
from tests.conftest import token_for

USER = EvaluationContext(targeting_key="u-42", attributes={"plan": "pro"})


@pytest.fixture
def flags(transactional_db: Any, tenant: Any) -> Any:
    return ofrep_flags(tenant)


@pytest.fixture
def client(live_server: Any, flags: Any) -> Iterator[OpenFeatureClient]:
    _, token = token_for(flags, ["evaluate"])
    provider = OFREPProvider(
        live_server.url, headers_factory=lambda: {"Authorization": f"Bearer {token}", "X-Tenant-ID": "acme"}
    )
    openfeature.set_provider(provider, domain="flagsvc-test")
    yield openfeature.get_client("flagsvc-test")
    openfeature.clear_providers()


def provider_of(client: OpenFeatureClient) -> OFREPProvider:
    provider = client.provider
    assert isinstance(provider, OFREPProvider)
    return provider


def test_openfeature__resolves_boolean_string_number_and_object_flags(client):
    checkout = client.get_boolean_details("checkout", False, USER)
    assert (checkout.value, checkout.variant, checkout.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert checkout.error_code is None
    assert checkout.flag_metadata["reason"] == "RULE_MATCH" and checkout.flag_metadata["rule_id"] == "pros"
    assert checkout.flag_metadata["flag_version"] == 1

    other = client.get_boolean_details("checkout", True, EvaluationContext(targeting_key="u-1"))
    assert (other.value, other.reason) == (False, Reason.DEFAULT)

    banner = client.get_string_details("banner", "fallback", USER)
    assert (banner.value, banner.reason) == ("Hello", Reason.STATIC)

    assert client.get_float_value("max-items", 1.0, USER) == 0.25
    assert client.get_integer_value("max-items", 0, EvaluationContext(targeting_key="u-1")) == 3

    limits = client.get_object_details("limits", {}, USER)
    assert limits.value == {"max": 3, "tags": ["x"]} and limits.reason == Reason.STATIC


def test_openfeature__strict_types__a_string_flag_asked_as_boolean__the_default_and_type_mismatch(client):
    details = client.get_boolean_details("banner", False, USER)
    assert details.value is False
    assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert details.reason == Reason.ERROR

    # JSON has one number type; the provider tells 3 from 3.0 as Python does: a whole number is an integer.
    whole = client.get_float_details("max-items", 1.5, EvaluationContext(targeting_key="u-1"))
    assert whole.value == 1.5 and whole.error_code == ErrorCode.TYPE_MISMATCH


def test_openfeature__unknown_flag__the_default_and_flag_not_found(client):
    details = client.get_boolean_details("no-such-flag", True, USER)
    assert details.value is True
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.error_message


def test_openfeature__no_targeting_key__the_default_and_targeting_key_missing(client):
    details = client.get_boolean_details("checkout", True, EvaluationContext(attributes={"plan": "pro"}))
    assert details.value is True
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING


class _Clock:
    """The provider's clock (it reads `datetime.now(timezone.utc)`), moved by the test, not by sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def datetime_class(self) -> type[datetime]:
        clock = self

        class ClockDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return clock.now

        return ClockDatetime


@pytest.fixture
def server_requests() -> Iterator[list[str]]:
    """The paths of the requests the live server receives (its thread sends the signal)."""
    seen: list[str] = []

    def count(sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
        seen.append(environ.get("PATH_INFO", ""))

    signals.request_started.connect(count, dispatch_uid="ofrep-test-count")
    yield seen
    signals.request_started.disconnect(dispatch_uid="ofrep-test-count")


def test_openfeature__429__the_provider_backs_off_for_retry_after_seconds(
    client, settings, monkeypatch, server_requests
):
    rest = copy.deepcopy(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"]["ofrep"] = "1/min"
    settings.REST_FRAMEWORK = rest
    clock = _Clock()
    monkeypatch.setattr(ofrep_provider, "datetime", clock.datetime_class())
    provider = provider_of(client)

    assert client.get_boolean_value("checkout", False, USER) is True
    limited = client.get_boolean_details("checkout", False, USER)

    assert limited.value is False and limited.error_code == ErrorCode.GENERAL
    assert provider.retry_after is not None
    waited = (provider.retry_after - clock.now).total_seconds()
    assert 1 <= waited <= 60, "the provider read our Retry-After as seconds"
    sent = len(server_requests)

    clock.now += timedelta(seconds=waited - 1)
    paused = client.get_boolean_details("checkout", False, USER)
    assert paused.error_code == ErrorCode.GENERAL and "paused" in (paused.error_message or "")
    assert len(server_requests) == sent, "no request while Retry-After lasts"

    clock.now += timedelta(seconds=2)
    rest["DEFAULT_THROTTLE_RATES"]["ofrep"] = ""
    settings.REST_FRAMEWORK = copy.deepcopy(rest)
    assert client.get_boolean_value("checkout", False, USER) is True
    assert len(server_requests) == sent + 1, "asks again once it has passed"
