"""The signed snapshot from real processes on PostgreSQL: every gunicorn worker and `publish_snapshot`
(a process of its own) give the same bytes for one ruleset version, and they verify (ADR 0017)."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evaluation.snapshot_keys import b64url_decode, parse_signature_header
from tests.e2e.server import Server, manage, service_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(database: str, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], dict[str, str]]]:
    env = service_env(database)
    manage(env, "migrate", "--noinput")
    manage(env, "seed")
    client = json.loads(
        manage(
            env,
            "create_api_client",
            "--tenant",
            "acme",
            "--scope",
            "evaluate",
            "--scope",
            "flags:write",
            "--json",
        )
    )
    server = Server(env).start(tmp_path / "server.log", workers=2, threads=2)
    try:
        status, _, token = server.request(
            "POST",
            "/v1/auth/token",
            {"client_id": client["client_id"], "client_secret": client["client_secret"]},
        )
        assert status == 200, token
        headers = {"Authorization": f"Bearer {token['access_token']}", "X-Tenant-ID": "acme"}
        yield server, env, headers
    finally:
        server.stop()


def get(server: Server, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{server.base}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_snapshot__every_worker_and_publish_snapshot__the_same_signed_bytes(
    served: Any, tmp_path: Path
) -> None:
    server, env, headers = served
    answers = [get(server, "/v1/snapshot", headers) for _ in range(6)]  # two workers answer these
    assert {status for status, _, _ in answers} == {200}
    bodies = {body for _, _, body in answers}
    assert len(bodies) == 1, "one version, one body, whichever process serves it"
    body = bodies.pop()
    signature = answers[0][1]["X-Snapshot-Signature"]
    assert {h["X-Snapshot-Signature"] for _, h, _ in answers} == {signature}

    zipped = get(server, "/v1/snapshot", {**headers, "Accept-Encoding": "gzip"})
    assert zipped[1]["Content-Encoding"] == "gzip" and gzip.decompress(zipped[2]) == body

    keys = json.loads(get(server, "/v1/snapshot/keys", headers)[2])["keys"]
    kid, raw_signature = parse_signature_header(signature)
    key = next(entry for entry in keys if entry["kid"] == kid)
    Ed25519PublicKey.from_public_bytes(b64url_decode(key["public_key"])).verify(raw_signature, body)
    document = json.loads(body)
    assert document["tenant"] == "acme" and document["flags"], "the seed's flags"

    manage(env, "publish_snapshot", "--tenant", "acme", "--to", str(tmp_path / "cdn"))
    assert (tmp_path / "cdn" / "snapshot.json").read_bytes() == body
    assert (tmp_path / "cdn" / "snapshot.json.sig").read_text().strip() == signature
    assert json.loads((tmp_path / "cdn" / "keys.json").read_text())["keys"] == keys

    etag = answers[0][1]["ETag"]
    assert get(server, "/v1/snapshot", {**headers, "If-None-Match": etag})[0] == 304
    flag = document["flags"][0]["key"]
    status, _, _ = server.request(
        "PATCH", f"/v1/flags/{flag}", {"description": "changed by the e2e test"}, headers=headers
    )
    assert status == 200
    # The other worker sees the change within RULESET_CHECK_INTERVAL (0.5 s) and may answer 304 until
    # then; ask both until four answers in a row are the new snapshot (four 200s in all is not enough:
    # the writer's two, then the other's 304s, then two more made the last four [304, 304, 200, 200]).
    deadline = time.monotonic() + 10
    answers = []
    while time.monotonic() < deadline and answers[-4:] != [200] * 4:
        answers.append(get(server, "/v1/snapshot", {**headers, "If-None-Match": etag})[0])
        time.sleep(0.1)
    assert answers[-4:] == [200] * 4, answers
