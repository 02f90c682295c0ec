"""OpenTelemetry at start (issue 15, item 7; docs/operations.md, Traces): off unless configured.

With `OTEL_ENABLED=1` or an `OTEL_EXPORTER_OTLP_ENDPOINT`, each process (gunicorn does not preload, so
each worker) sets up a tracer provider exporting by OTLP over HTTP in batches, instruments Django (one
server span per request, by route) and turns on our own spans (`kernel.tracing`). Otherwise nothing is
imported or set up. The exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables itself.
"""

from __future__ import annotations

from django.conf import settings

from kernel import tracing

EXCLUDED_URLS = "healthz,readyz,metrics"
"""Probes and scrapes are not traced: they are frequent and say nothing about flags."""


def configure() -> bool:
    """Set tracing up when the settings ask for it; True when it is on. Call before the WSGI handler
    loads the middleware (flagsvc/wsgi.py): the Django instrumentation adds its own."""
    if not settings.OTEL_ENABLED or tracing.TRACER is not None:
        return tracing.TRACER is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    tracing.enable(provider)
    return True
