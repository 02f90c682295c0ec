"""Probes answer whatever `Host` an orchestrator or scraper sends; every other route still checks it
against ALLOWED_HOSTS, and a refused host is one WARNING line, not an ERROR with a traceback."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from flagsvc.logging import ExpectedRefusal

POD_ADDRESS = "10.1.2.3:8000"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probe__host_of_the_pods_address__answered(path: str) -> None:
    assert Client().get(path, HTTP_HOST=POD_ADDRESS).status_code == 200


@pytest.mark.parametrize("path", ["/admin/login/", "/v1/flags", "/openapi.json"])
def test_other_routes__host_not_served__400(path: str) -> None:
    assert Client().get(path, HTTP_HOST=POD_ADDRESS).status_code == 400


def test_refused_host__logged_as_one_warning_without_a_traceback() -> None:
    try:
        raise ValueError("Invalid HTTP_HOST header: '10.1.2.3:8000'.")
    except ValueError as exc:
        record = logging.LogRecord(
            "django.security.DisallowedHost",
            logging.ERROR,
            __file__,
            1,
            str(exc),
            None,
            (ValueError, exc, None),
        )
    record.request = object()
    assert ExpectedRefusal().filter(record) is True
    assert (record.levelno, record.levelname, record.exc_info) == (logging.WARNING, "WARNING", None)
    assert "request" not in record.__dict__


def test_refused_host_logger__configured_with_the_filter() -> None:
    logger = logging.getLogger("django.security.DisallowedHost")
    assert any(isinstance(item, ExpectedRefusal) for item in logger.filters)
    assert logger.propagate is False
