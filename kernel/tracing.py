"""The tracer our own spans use (issue 15, item 7; docs/operations.md, Traces): None unless tracing is on.

Off by default. `flagsvc.tracing.configure` turns it on at start when `OTEL_ENABLED=1` or
`OTEL_EXPORTER_OTLP_ENDPOINT` is set; tests turn it on with an in-memory exporter (`enable`). While it
is None no tracer provider exists and a traced service pays one attribute read (`evaluation.tracing`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

TRACER: Tracer | None = None
INSTRUMENTATION_NAME = "flagsvc"
MAX_KEY_CHARS = 200
"""A flag key as a span attribute is cut here: a caller may send a made-up key of any length."""


def enable(provider: TracerProvider) -> None:
    global TRACER
    TRACER = provider.get_tracer(INSTRUMENTATION_NAME)


def disable() -> None:
    global TRACER
    TRACER = None


def actor_kind(actor: str | None) -> str:
    """`user`, `client` or `system` of an actor name such as `user:alice`: never the id after it."""
    kind, _, _ = (actor or "").partition(":")
    return kind if kind in ("user", "client", "system") else "unknown"
