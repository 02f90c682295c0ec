"""A schema fuzzer (schemathesis) over every operation of `/openapi.json`, in process.

The OpenAPI document is a contract too: every answer must be one it documents (status, body, headers,
content type), no input may give a 500, and what the schema calls invalid must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from tests.conftest import token_for

# Two rules JSON Schema cannot say, so a body the schema calls valid may still get their 422:
# - the engine's rules for a flag or segment (a default variant that does not exist, a weight sum of
#   zero), which name the field;
# - portable JSON (ADR 0009) in the free-form parts of any body (attributes, values, fields a route
#   ignores): at most 64 levels, integers within 2**53 - 1. NUL is never generated for the same reason.
# Every other check holds for every operation: no 500, only documented statuses, bodies and headers.
# Unknown query parameters are ignored by design (a client's cache-buster must not break it), so the
# fuzzer does not add them.
CONFIG = SchemathesisConfig.from_str(
    """
[generation]
allow-extra-parameters = false
allow-x00 = false

[[operations]]
include-name-regex = "^(POST|PUT|PATCH) /v1/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "412", "422", "429"]
"""
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", get_wsgi_application(), config=CONFIG)


@pytest.fixture(autouse=True)
def _requests_keep_the_test_connection() -> Iterator[None]:
    """The fuzzer calls the real WSGI handler, whose request signals close "old" database connections:
    on PostgreSQL that closed the test's own connection mid-transaction (every later query: 503).
    Django's test client disconnects the same receiver for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def every_scope_headers(db: Any, tenant: Any) -> dict[str, str]:
    _, token = token_for(tenant)
    return {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant.slug}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation__answers_only_what_the_schema_documents(
    case: Any, every_scope_headers: dict[str, str]
) -> None:
    # The fuzzer drops or garbles a required header on purpose in some cases: those keep what it made.
    # Any other case gets a real token and the real tenant (a fuzzed slug would be a 403 every time).
    # A case whose headers are the negative part (a required header dropped on purpose) keeps them too:
    # filling them in would make it a valid request that the check then calls accepted bad data.
    generated = case.headers or {}
    header_info = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    negative_headers = header_info is not None and header_info.mode == GenerationMode.NEGATIVE
    wants_ours = "X-Tenant-ID" in generated and "Authorization" not in generated and not negative_headers
    case.call_and_validate(headers=every_scope_headers if wants_ours else {})
