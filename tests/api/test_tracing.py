"""Traces (issue 15, item 7; docs/operations.md, Traces): `flag.evaluate` and `flag.update` spans with
their attributes, through an in-memory exporter; none while tracing is off (the default)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from rest_framework.test import APIClient

from flagsvc.tracing import configure
from kernel import tracing
from tests.factories import make_flag

pytestmark = pytest.mark.django_db(transaction=True)

USER_ID = "u-traced-user-42"
RULED = {
    "state": "on",
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
    "default": {"variant": "off"},
}


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def exported(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def evaluate(api: APIClient, key: str, **attributes: str) -> int:
    body = {"flag_key": key, "user": {"id": USER_ID, "attributes": attributes}}
    return api.post("/v1/evaluate", body, format="json").status_code


def test_tracing__an_evaluation__is_a_flag_evaluate_span_with_key_reason_and_cache_hit(api, tenant, exported):
    make_flag(tenant, "checkout", **RULED)
    exported.clear()

    assert evaluate(api, "checkout", country="NL") == 200
    assert evaluate(api, "checkout", country="DE") == 200

    first, second = named(exported, "flag.evaluate")
    assert dict(first.attributes or {}) == {
        "feature_flag.key": "checkout",
        "flagsvc.tenant": "acme",
        "feature_flag.result.reason": "RULE_MATCH",
        "flagsvc.cache_hit": False,  # the first evaluation after a write compiles
    }
    assert dict(second.attributes or {})["feature_flag.result.reason"] == "DEFAULT"
    assert dict(second.attributes or {})["flagsvc.cache_hit"] is True
    values = [str(v) for span in (first, second) for v in (span.attributes or {}).values()]
    assert not any(USER_ID in v for v in values), "a user id is in a span"


def test_tracing__an_unknown_flag__is_a_failed_span_without_a_reason(api, tenant, exported):
    make_flag(tenant, "checkout")
    assert evaluate(api, "no-such-flag") == 404

    (span,) = named(exported, "flag.evaluate")
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["feature_flag.key"] == "no-such-flag"
    assert "feature_flag.result.reason" not in (span.attributes or {})


def test_tracing__writes_over_the_api__are_flag_update_spans_with_version_and_actor_kind(
    api, tenant, exported
):
    created = api.post(
        "/v1/flags",
        {
            "key": "banner",
            "variants": [{"key": "on", "value": True}],
            "default": {"variant": "on"},
            "off_variant": "on",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    changed = api.patch("/v1/flags/banner", {"description": "new words"}, format="json")
    assert changed.status_code == 200, changed.content
    archived = api.delete("/v1/flags/banner")
    assert archived.status_code in (200, 204)

    spans = named(exported, "flag.update")
    assert [dict(span.attributes or {}) for span in spans] == [
        {
            "feature_flag.key": "banner",
            "flagsvc.operation": operation,
            "flagsvc.tenant": "acme",
            "flagsvc.actor.kind": "client",
            "flagsvc.flag.version": version,
        }
        for operation, version in (("create", 1), ("update", 2), ("archive", 3))
    ]


def test_tracing__through_the_django_instrumentation__our_span_is_the_request_span_child(
    make_api, tenant, provider, exported
):
    make_flag(tenant, "checkout")
    DjangoInstrumentor().instrument(tracer_provider=provider)
    try:
        client = make_api(tenant)  # a new handler loads the middleware the instrumentation added
        exported.clear()
        assert evaluate(client, "checkout") == 200
    finally:
        DjangoInstrumentor().uninstrument()

    (server,) = [span for span in exported.get_finished_spans() if span.kind == SpanKind.SERVER]
    (ours,) = named(exported, "flag.evaluate")
    assert ours.parent is not None and ours.parent.span_id == server.context.span_id
    assert server.context.trace_id == ours.context.trace_id


def test_tracing__off_by_default__no_provider_no_spans(api, tenant, provider):
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # attached, but tracing is not enabled
    assert settings.OTEL_ENABLED is False
    assert configure() is False
    assert tracing.TRACER is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "a tracer provider was set up"

    make_flag(tenant, "checkout")
    assert evaluate(api, "checkout") == 200
    assert api.patch("/v1/flags/checkout", {"description": "x"}, format="json").status_code == 200
    assert exporter.get_finished_spans() == ()
