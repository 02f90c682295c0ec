"""A small real HTTP server that speaks the parts of api.md the client uses: tokens, the signed
snapshot with its ETag, the keys, and the Server-Sent Events stream. No Django: the SDK's tests run
where only the SDK is installed."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CLIENT_ID = "acme-client"
CLIENT_SECRET = "s3cret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    def __init__(self, kid: str = "k1") -> None:
        self.kid = kid
        self.private = Ed25519PrivateKey.generate()

    @property
    def public(self) -> str:
        return b64url(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def header(self, body: bytes) -> str:
        return f"ed25519 keyid={self.kid} sig={b64url(self.private.sign(body))}"


def simple_flag(
    key: str = "checkout", *, on: bool = True, version: int = 1, **extra: Any
) -> dict[str, Any]:
    return {"key": key, "state": "on" if on else "off", "version": version, **extra}


class FakeService:
    def __init__(self, tenant: str = "acme") -> None:
        self.tenant = tenant
        self.key = SigningKey()
        self.flags: list[dict[str, Any]] = [simple_flag()]
        self.segments: list[dict[str, Any]] = []
        self.version = 1
        self.events: list[tuple[int, str, str]] = []  # (id, type, data)
        self.changed = threading.Condition()
        self.tamper = False
        self.stream = True
        self.expires_in = 3600
        self.valid_tokens: set[str] = set()
        self.counts: dict[str, int] = {}
        # POST /v1/usage and /v1/exposures: what arrived (path, body), and the statuses to answer
        # in turn (the last repeats).
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.report_statuses: list[int] = [202]
        self.stopping = False
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                service._count("POST " + self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path in ("/v1/usage", "/v1/exposures"):
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in service.valid_tokens:
                        return self._json(401, {"error": {"code": "unauthenticated"}})
                    with service.changed:
                        index = len(service.reports)
                        service.reports.append((self.path, body))
                        service.changed.notify_all()
                    statuses = service.report_statuses
                    status = statuses[min(index, len(statuses) - 1)]
                    return self._json(status, {"batch_id": body.get("batch_id")})
                if self.path != "/v1/auth/token":
                    return self._json(404, {"error": {"code": "not_found"}})
                if body != {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}:
                    return self._json(401, {"error": {"code": "unauthenticated"}})
                token = f"tok-{len(service.valid_tokens) + 1}-{time.monotonic_ns()}"
                service.valid_tokens.add(token)
                return self._json(
                    200,
                    {
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": service.expires_in,
                    },
                )

            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                service._count("GET " + path)
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if (
                    token not in service.valid_tokens
                    or self.headers.get("X-Tenant-ID") != service.tenant
                ):
                    return self._json(401, {"error": {"code": "unauthenticated"}})
                if path == "/v1/snapshot/keys":
                    return self._json(200, service.keys_document())
                if path == "/v1/snapshot":
                    etag = f'"{service.version}"'
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    body, signature = service.signed()
                    return self._send(200, body, {"ETag": etag, "X-Snapshot-Signature": signature})
                if path == "/v1/events":
                    if not service.stream:
                        return self._json(406, {"error": {"code": "not_acceptable"}})
                    return self._events()
                return self._json(404, {"error": {"code": "not_found"}})

            def _events(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                cursor = self.headers.get("Last-Event-ID")
                with service.changed:
                    last = service.events[-1][0] if service.events else 0
                    known = {event_id for event_id, _, _ in service.events}
                position = last
                frames = b": events\n\n"
                if cursor is not None:
                    if cursor.isdecimal() and (int(cursor) in known or int(cursor) == 0):
                        position = int(cursor)
                    else:
                        frames += f"id: {last}\nevent: reset\ndata: {{}}\n\n".encode()
                try:
                    self.wfile.write(frames)
                    self.wfile.flush()
                    while not service.stopping:
                        with service.changed:
                            pending = [e for e in service.events if e[0] > position]
                            if not pending:
                                service.changed.wait(0.5)
                                pending = [e for e in service.events if e[0] > position]
                        if pending:
                            out = b"".join(
                                f"id: {i}\nevent: {kind}\ndata: {data}\n\n".encode()
                                for i, kind, data in pending
                            )
                            position = pending[-1][0]
                        else:
                            out = b": keep-alive\n\n"
                        self.wfile.write(out)
                        self.wfile.flush()
                except OSError:
                    return

            def _json(self, status: int, document: Any) -> None:
                self._send(status, json.dumps(document).encode(), {})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def keys_document(self) -> dict[str, Any]:
        return {"keys": [{"kid": self.key.kid, "alg": "Ed25519", "public_key": self.key.public}]}

    def document(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ruleset_version": str(self.version),
            "generated_at": f"2026-12-01T10:00:{self.version % 60:02d}Z",
            "flags": self.flags,
            "segments": self.segments,
        }

    def signed(self) -> tuple[bytes, str]:
        body = json.dumps(self.document()).encode()
        signature = self.key.header(body)
        if self.tamper:  # changed in transit: every flag turned off, the signature kept
            body = body.replace(b'"state": "on"', b'"state": "off"')
        return body, signature

    def publish(
        self, flags: list[dict[str, Any]], segments: list[dict[str, Any]] | None = None
    ) -> str:
        """A write: new flags, a new ruleset version and one event naming it."""
        with self.changed:
            self.flags = flags
            if segments is not None:
                self.segments = segments
            self.version += 1
            event_id = (self.events[-1][0] if self.events else 100) + 1
            data = json.dumps(
                {
                    "id": str(event_id),
                    "type": "flag.updated",
                    "tenant": self.tenant,
                    "ruleset_version": str(self.version),
                }
            )
            self.events.append((event_id, "flag.updated", data))
            self.changed.notify_all()
        return str(self.version)

    def start(self) -> FakeService:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        with self.changed:
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running(service: FakeService | None = None) -> Iterator[FakeService]:
    service = (service or FakeService()).start()
    try:
        yield service
    finally:
        service.stop()
