"""Least privilege on real PostgreSQL: migrations run as the owner, the service as a role that is not.

The service role must serve (a real gunicorn creates and evaluates a flag) and must not be able to
touch the audit trail behind the app's back, whatever SQL it sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import ADMIN_URL
from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

PASSWORD = "service-role-test-password"


@dataclass(frozen=True)
class Roles:
    database: str
    owner: str
    service: str

    def url(self, role: str) -> str:
        return f"postgres://{role}:{PASSWORD}@127.0.0.1:5432/{self.database}"


@pytest.fixture
def roles() -> Iterator[Roles]:
    """A fresh database owned by a non-superuser owner role, and a bare login role for the service."""
    suffix = uuid.uuid4().hex[:10]
    made = Roles(
        database=f"flagsvc_lp_{suffix}", owner=f"flagsvc_owner_{suffix}", service=f"flagsvc_app_{suffix}"
    )
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for role in (made.owner, made.service):
            conn.execute(
                f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
            )
        conn.execute(f'CREATE DATABASE "{made.database}" OWNER {made.owner}')
    try:
        yield made
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [made.database]
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{made.database}"')
            for role in (made.service, made.owner):
                conn.execute(f"DROP ROLE IF EXISTS {role}")


def _refused(url: str, statement: str) -> str:
    """Run `statement` as the role in `url`; return PostgreSQL's refusal (the test fails if it succeeds)."""
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refusal:
            conn.execute(statement)
        conn.rollback()
    return str(refusal.value)


def test_service_role__not_owner_not_superuser__serves_and_cannot_touch_the_audit_trail(
    roles, tmp_path: Path
):
    owner_env = service_env(roles.url(roles.owner))
    manage(owner_env, "migrate", "--noinput")
    manage(owner_env, "grant_service_role", "--role", roles.service)

    service_env_ = service_env(roles.url(roles.service))
    client = bootstrap_tenant(service_env_)  # the operators' commands work as the service role too
    server = Server(service_env_).start(tmp_path / "server.log")
    try:
        _, _, token = server.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        headers = {"Authorization": f"Bearer {token['access_token']}", "X-Tenant-ID": client["tenant"]}
        flag = {"key": "least", "state": "on", "rules": [], "default": {"variant": "on"}}
        status, _, body = server.request("POST", "/v1/flags", flag, headers)
        assert status == 201, body
        status, _, body = server.request(
            "POST", "/v1/evaluate", {"flag_key": "least", "user": {"id": "u-1"}}, headers
        )
        assert (status, body["reason"]) == (200, "DEFAULT"), body
        status, _, body = server.request("PATCH", "/v1/flags/least", {"description": "changed"}, headers)
        assert status == 200, body
        status, _, body = server.request("DELETE", "/v1/flags/least", None, headers)
        assert status == 204, body
    finally:
        server.stop()

    service = roles.url(roles.service)
    assert "must be owner" in _refused(
        service, "ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only"
    )
    assert "must be owner" in _refused(service, "ALTER TABLE audit_auditentry DISABLE TRIGGER ALL")
    assert "permission denied" in _refused(service, "UPDATE audit_auditentry SET actor = 'someone else'")
    assert "permission denied" in _refused(service, "DELETE FROM audit_auditentry")
    assert "permission denied" in _refused(service, "TRUNCATE audit_auditentry")
    assert "permission denied" in _refused(service, "SET session_replication_role = replica")
    assert "must be owner" in _refused(service, "DROP TABLE audit_auditentry")
    assert "permission denied" in _refused(service, "CREATE TABLE shadow (id int)")
    with psycopg.connect(service) as conn:
        entries = conn.execute("SELECT action FROM audit_auditentry ORDER BY seq").fetchall()
    assert [action for (action,) in entries] == ["create", "update", "archive"]


def test_grant_service_role__a_superuser__is_refused(roles):
    owner_env = service_env(roles.url(roles.owner))
    manage(owner_env, "migrate", "--noinput")

    with pytest.raises(RuntimeError, match="is a superuser"):
        manage(owner_env, "grant_service_role", "--role", "postgres")
    with pytest.raises(RuntimeError, match="owns the tables"):
        manage(owner_env, "grant_service_role", "--role", roles.owner)
