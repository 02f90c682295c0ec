"""The HTTP front door of a real gunicorn (flagsvc/http_worker.py), spoken to over raw sockets.

Slow clients, bodies over the cap, chunked bodies and the errors gunicorn answers itself: the
server is two workers of two threads, as in production (gunicorn.conf.py).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server, bootstrap_tenant, manage, service_env

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 5
BODY_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("http")
    environment = service_env(
        f"sqlite:///{directory / 'http.sqlite3'}", REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT)
    )
    manage(environment, "migrate", "--noinput")
    return environment


@pytest.fixture(scope="module")
def client(env: dict[str, str]) -> dict[str, Any]:
    return bootstrap_tenant(env)


@pytest.fixture(scope="module")
def server(
    env: dict[str, str], client: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("http-log") / "server.log"
    running = Server(env).start(log, workers=2, threads=2)
    try:
        yield running
    finally:
        running.stop()


def connect(server: Server, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response off a raw socket: status, headers (lower-case names), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return status, headers, body[:length]


def assert_error_shape(headers: dict[str, str], body: bytes, code: str) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json"), body[:200]
    document = json.loads(body)
    assert set(document) == {"error", "request_id"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert document["error"]["code"] == code
    assert document["request_id"] == headers["x-request-id"]
    return dict(document["error"])


def healthz_status(server: Server) -> int:
    """`/healthz`, with a client that gives up after 3 s (a generous bound: it answers in ms)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def test_slow_clients__bodies_and_heads_trickling_in__healthz_answers_and_each_gets_408(server):
    # Given 8 clients that announce 1,000 bytes and send 10, and 4 that send half a head,
    head = b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    slow = []
    for _ in range(8):
        sock = connect(server)
        sock.sendall(head + b"Content-Length: 1000\r\n\r\n" + b"0123456789")
        slow.append(sock)
    for _ in range(4):
        sock = connect(server)
        sock.sendall(head[:30])
        slow.append(sock)
    started = time.monotonic()
    # When another client asks while all of them hold their connections,
    # Then it is answered (more slow clients than the server has threads: 2 x 2),
    for _ in range(3):
        assert healthz_status(server) == 200
    assert time.monotonic() - started < READ_TIMEOUT, "answered while the slow clients were held"
    # and each slow client gets a 408 in the error shape once its time is up.
    for sock in slow:
        status, headers, body = read_response(sock)
        assert status == 408
        error = assert_error_shape(headers, body, "request_timeout")
        assert f"within {READ_TIMEOUT} s" in error["message"]
        sock.close()
    assert time.monotonic() - started < READ_TIMEOUT + 3, "no slow client is held for long"


def test_body_over_the_cap__client_that_writes_it_all_first__reads_the_413(server):
    """3 MiB sent as a network would (pieces, pauses): answered early, the rest is read away."""
    body = b'{"key": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    sock = connect(server)
    sock.sendall(
        b"POST /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    for start in range(0, len(body), 64 * 1024):
        sock.sendall(body[start : start + 64 * 1024])
        time.sleep(0.005)
    status, headers, response = read_response(sock)
    sock.close()
    assert status == 413
    error = assert_error_shape(headers, response, "payload_too_large")
    assert error["details"] == {"limit_bytes": BODY_LIMIT}
    assert f"The body is {len(body)} bytes; the limit is {BODY_LIMIT} bytes" in error["message"]


def test_body_over_the_cap__http_client_in_one_write__gets_413_not_a_reset(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = b"[" + b"1," * (10 * 1024 * 1024) + b"1]"  # 20 MiB: more than the kernel buffers hold
    connection.request("POST", "/v1/flags", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    connection.close()


def chunked(body: bytes, pieces: int = 3) -> bytes:
    size = max(1, len(body) // pieces)
    framed = b"".join(
        b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n" for i in range(0, len(body), size)
    )
    return framed + b"0\r\n\r\n"


def test_chunked_body__is_read_and_served(server, client):
    body = json.dumps({"client_id": client["client_id"], "client_secret": client["client_secret"]}).encode()
    sock = connect(server)
    sock.sendall(
        b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)
    )
    status, _, response = read_response(sock)
    sock.close()
    assert status == 200, response
    assert json.loads(response)["token_type"] == "Bearer"


def test_chunked_body__over_the_cap__413_in_the_error_shape(server):
    sock = connect(server)
    sock.sendall(
        b"POST /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"x" * (BODY_LIMIT + 10), pieces=4)
    )
    status, headers, response = read_response(sock)
    sock.close()
    assert status == 413
    error = assert_error_shape(headers, response, "payload_too_large")
    assert f"passed the limit of {BODY_LIMIT} bytes" in error["message"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n", 400, "malformed_request"),
        (b"GET /v1/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"GET /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"".join(b"X-H%d: a\r\n" % n for n in range(120))
            + b"\r\n",
            431,
            "headers_too_large",
        ),
    ],
    ids=["invalid-header", "long-request-line", "huge-header", "too-many-headers"],
)
def test_errors_gunicorn_answers_itself__are_json_with_a_request_id(server, request_bytes, status, code):
    sock = connect(server)
    sock.sendall(request_bytes)
    answered, headers, body = read_response(sock)
    sock.close()
    assert answered == status
    assert_error_shape(headers, body, code)


def test_keep_alive__several_requests_on_one_connection__each_read_whole(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == b"ok"
    connection.close()


def test_log_has_no_traceback(server):
    assert "Traceback" not in Path(server.log_path or "").read_text()


def test_pipelined_requests__a_half_sent_second_request__holds_no_thread(server):
    # Given clients that send one whole request and the start of the next on the same connection,
    whole = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    half = b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
    pipelining = []
    for _ in range(6):
        sock = connect(server)
        sock.sendall(whole + half)
        pipelining.append(sock)
    started = time.monotonic()
    # Then each gets the first answer, the server keeps serving others,
    for sock in pipelining:
        status, _, body = read_response(sock)
        assert (status, body) == (200, b"ok")
    assert healthz_status(server) == 200
    assert time.monotonic() - started < READ_TIMEOUT, "answered while the half requests were held"
    # and the half-sent request is answered 408 when its time is up.
    for sock in pipelining:
        status, headers, body = read_response(sock)
        assert status == 408
        assert_error_shape(headers, body, "request_timeout")
        sock.close()
