"""The whole service as real processes: gunicorn (the API, the snapshot) and the stream process
(`GET /v1/events`), on a PostgreSQL database of the test's own, with a snapshot signing key; they can
be stopped, started again on the same ports, and moved to another database (a restore)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from tests.e2e.conftest import ADMIN_URL, allow_connections
from tests.e2e.server import Server, StreamServer, manage, service_env


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key() -> tuple[str, str]:
    """A fresh Ed25519 key: (private key as base64url of its raw bytes, public key likewise)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return b64url(private), b64url(public)


def create_database(template: str | None = None) -> str:
    name = f"flagsvc_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_database(name: str) -> None:
    allow_connections(name, allow=True)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@dataclass
class ServiceStack:
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    web: Server | None = None
    stream: StreamServer | None = None
    restarts: int = 0

    def __post_init__(self) -> None:
        private, self.public_key = signing_key()
        self.kid = "e2e-key"
        self.extra_env = {
            "SNAPSHOT_SIGNING_KEY": private,
            "SNAPSHOT_SIGNING_KEY_ID": self.kid,
            "RATE_LIMIT_TOKEN": "100000/min",
            "EVENTS_KEEPALIVE_SECONDS": "1",
            **self.extra_env,
        }
        self.database = create_database()
        self.databases.append(self.database)
        self.env = self._env()
        manage(self.env, "migrate", "--noinput")

    def _env(self) -> dict[str, str]:
        return service_env(f"postgres://postgres@127.0.0.1:5432/{self.database}", **self.extra_env)

    @property
    def base(self) -> str:
        assert self.web is not None
        return self.web.base

    @property
    def events_base(self) -> str:
        assert self.stream is not None
        return self.stream.base

    @property
    def trusted_keys(self) -> dict[str, str]:
        return {self.kid: self.public_key}

    def start(self) -> ServiceStack:
        self.restarts += 1
        web = self.web or Server(self.env)
        stream = self.stream or StreamServer(self.env)
        web.env = stream.env = self.env
        self.web = web.start(self.logs / f"web-{self.restarts}.log")
        self.stream = stream.start(self.logs / f"stream-{self.restarts}.log")
        return self

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.web is not None:
            self.web.stop()

    def move_to_copy_of_database(self) -> None:
        """Stop, copy the database as it is now (PostgreSQL TEMPLATE), keep serving the original;
        ``use_copy`` later switches to that older state: a restore from backup."""
        self.stop()
        self.copy = create_database(template=self.database)
        self.databases.append(self.copy)

    def use_copy(self) -> None:
        self.stop()
        self.database = self.copy
        self.env = self._env()

    def close(self) -> None:
        self.stop()
        for name in self.databases:
            drop_database(name)

    def seed(self) -> dict[str, Any]:
        """`manage.py seed`: tenant acme with the demo flags; its client has every scope."""
        return dict(json.loads(manage(self.env, "seed", "--json").strip().splitlines()[-1]))

    def headers(self, client: dict[str, Any]) -> dict[str, str]:
        assert self.web is not None
        status, _, body = self.web.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        assert status == 200, body
        return {"Authorization": f"Bearer {body['access_token']}", "X-Tenant-ID": client["tenant"]}

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        assert self.web is not None
        status, _, answer = self.web.request(method, path, body, headers)
        return status, answer
