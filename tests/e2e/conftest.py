"""Fixtures of the end-to-end tests: a fresh PostgreSQL database of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def allow_connections(name: str, *, allow: bool) -> None:
    """Open or close a database to new connections; closing also ends the ones it has (an outage)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database per test; PostgreSQL must be there (make test checks it first)."""
    name = f"flagsvc_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        allow_connections(name, allow=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def service_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """gunicorn and the stream process on a database of the module's own, with a snapshot signing
    key (tests/e2e/stack.py); the tests may stop, restart and move it to a restored database."""
    from tests.e2e.stack import ServiceStack

    stack = ServiceStack(tmp_path_factory.mktemp("stack"))
    try:
        yield stack.start()
    finally:
        stack.close()
