"""Answers the gunicorn worker writes itself (flagsvc/http_worker.py) keep the request-id and log contract.

api.md, Conventions: every response carries `X-Request-ID`, the caller's value passed through or a new
one; Operations: every request gives one log line with `method`, `path`, `status`, `duration_ms`,
`request_id`, ... A body over the cap, a slow client or a head gunicorn refuses never reaches Django's
middleware, so the worker does both itself: these tests read its responses off raw sockets and its
JSON lines out of the server's log.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagsvc.logging import REQUEST_LOG_FIELDS
from tests.e2e.server import Server, manage, service_env
from tests.e2e.test_server_http import assert_error_shape, connect, read_response

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 2
BODY_LIMIT = 1024 * 1024
NEW_ID = re.compile(r"^[0-9a-f]{32}$")
"""The middleware's new ids (flagsvc.middleware.RequestIds): 32 hex digits."""
TOKEN = "e2e-never-logged-token"

Line = dict[str, Any]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("worker-errors")
    env = service_env(
        f"sqlite:///{directory / 'worker-errors.sqlite3'}", REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT)
    )
    manage(env, "migrate", "--noinput")
    running = Server(env).start(directory / "server.log", workers=1, threads=2)
    try:
        yield running
    finally:
        running.stop()


def log_lines(server: Server) -> list[Line]:
    text = Path(server.log_path or "").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def access_lines(server: Server, request_id: str, *, expect: int = 1) -> list[Line]:
    """The `flagsvc.access` lines of one request id, waiting a little for them to be written."""
    deadline = time.monotonic() + 5
    while True:
        found = [
            line
            for line in log_lines(server)
            if line.get("logger") == "flagsvc.access" and line.get("request_id") == request_id
        ]
        if len(found) >= expect or time.monotonic() > deadline:
            return found


def normal_access_line(server: Server) -> Line:
    """The access line of a request Django served, to compare the worker's lines with."""
    request_id = f"e2e-normal-{uuid.uuid4().hex}"
    sock = connect(server)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {request_id}\r\n\r\n".encode())
    assert read_response(sock)[0] == 200
    sock.close()
    (line,) = access_lines(server, request_id)
    return line


def exchange(server: Server, data: bytes) -> tuple[int, dict[str, str], bytes]:
    sock = connect(server)
    try:
        sock.sendall(data)
        return read_response(sock)
    finally:
        sock.close()


def over_the_cap(request_id_header: bytes = b"") -> bytes:
    """The head of a POST that announces a body over the cap, with a token that must not be logged."""
    return (
        b"POST /v1/flags?dry_run=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n".encode()
        + request_id_header
        + f"Content-Length: {BODY_LIMIT + 1}\r\n\r\n".encode()
    )


def assert_one_access_line(
    server: Server, request_id: str, status: int, method: str | None, path: str | None
) -> Line:
    (line,) = access_lines(server, request_id)
    assert set(line) == set(normal_access_line(server)), "the same shape as a request Django served"
    assert set(line) >= REQUEST_LOG_FIELDS
    assert (line["message"], line["level"], line["status"]) == ("request", "WARNING", status)
    assert (line["method"], line["path"]) == (method, path)
    assert (line["tenant"], line["actor"]) == (None, None)
    assert line["client_addr"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    return line


def test_body_over_the_cap__413_carries_the_callers_request_id__one_access_line(server):
    status, headers, body = exchange(server, over_the_cap(b"X-Request-ID: e2e-413-caller.id:1\r\n"))

    assert status == 413
    assert headers["x-request-id"] == "e2e-413-caller.id:1"
    assert_error_shape(headers, body, "payload_too_large")  # the body's request_id is the header's
    assert_one_access_line(server, "e2e-413-caller.id:1", 413, "POST", "/v1/flags")
    text = Path(server.log_path or "").read_text()
    assert TOKEN not in text and "dry_run" not in text, "no credential and no query string is logged"


def test_body_over_the_cap__no_caller_id__413_with_a_new_id__one_access_line(server):
    status, headers, body = exchange(server, over_the_cap())

    assert status == 413
    assert NEW_ID.match(headers["x-request-id"]), headers["x-request-id"]
    assert_error_shape(headers, body, "payload_too_large")
    assert_one_access_line(server, headers["x-request-id"], 413, "POST", "/v1/flags")


@pytest.mark.parametrize(
    "invalid", [b"has space", b"a" * 129, b"semi;colon", b""], ids=["space", "too-long", "semicolon", "empty"]
)
def test_body_over_the_cap__invalid_caller_id__replaced_by_a_new_one(server, invalid):
    status, headers, body = exchange(server, over_the_cap(b"X-Request-ID: " + invalid + b"\r\n"))

    assert status == 413
    assert NEW_ID.match(headers["x-request-id"]), headers["x-request-id"]
    assert_error_shape(headers, body, "payload_too_large")
    assert_one_access_line(server, headers["x-request-id"], 413, "POST", "/v1/flags")


def test_body_over_the_cap__two_caller_ids__replaced_by_a_new_one(server):
    """Two `X-Request-ID` fields join into one value with a comma, as in WSGI: not a valid id."""
    status, headers, _ = exchange(server, over_the_cap(b"X-Request-ID: e2e-one\r\nX-Request-ID: e2e-two\r\n"))

    assert status == 413
    assert NEW_ID.match(headers["x-request-id"]), headers["x-request-id"]


NUL_HEADER = b"X-Broken: a\x00b\r\n"


@pytest.mark.parametrize(
    ("head", "passed_through"),
    [
        (b"X-Request-ID: e2e-before-nul\r\n" + NUL_HEADER, True),
        (NUL_HEADER + b"X-Request-ID: e2e-after-nul\r\n", False),
    ],
    ids=["id-before-the-bad-header", "id-after-the-bad-header"],
)
def test_nul_in_a_header__400_passes_the_callers_id_read_before_it__one_access_line(
    server, head, passed_through
):
    """The header fields before the malformed one were read (as a parser reads them, in order); the
    ones after it were not, so an id there is not known and a new one is made."""
    status, headers, body = exchange(
        server, b"GET /v1/flags?limit=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n"
    )

    assert status == 400
    assert_error_shape(headers, body, "malformed_request")
    request_id = headers["x-request-id"]
    if passed_through:
        assert request_id == "e2e-before-nul"
    else:
        assert NEW_ID.match(request_id), request_id
    assert_one_access_line(server, request_id, 400, "GET", "/v1/flags")
    gunicorns_own = [
        line
        for line in log_lines(server)
        if line["logger"] == "gunicorn.error" and "Invalid" in line["message"]
    ]
    assert any(line["request_id"] == request_id for line in gunicorns_own), "gunicorn's line has the id too"


def test_malformed_request_line__400_with_a_new_id__method_and_path_null(server):
    status, headers, body = exchange(server, b"NOT A REQUEST LINE\r\nX-Request-ID: e2e-unread\r\n\r\n")

    assert status == 400
    assert_error_shape(headers, body, "malformed_request")
    assert NEW_ID.match(headers["x-request-id"]), "headers after a bad request line are not read"
    assert_one_access_line(server, headers["x-request-id"], 400, None, None)


def test_path_percent_encoded__logged_decoded_as_django_logs_it(server):
    status, headers, _ = exchange(
        server,
        b"GET /v1/fl%C3%A9gs%20x?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: e2e-encoded\r\n"
        + NUL_HEADER
        + b"\r\n",
    )

    assert (status, headers["x-request-id"]) == (400, "e2e-encoded")
    assert_one_access_line(server, "e2e-encoded", 400, "GET", "/v1/fl\u00e9gs x")


def test_slow_body__408_carries_the_callers_request_id__one_access_line(server):
    # Given a client that sends its whole head and part of its body, and one that sends half a head,
    whole_head = connect(server)
    whole_head.sendall(
        b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: e2e-slow-body\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    half_head = connect(server)
    half_head.sendall(b"POST /v1/auth/token HTTP/1.1\r\nX-Request-ID: e2e-slow-head\r\nHost: 12")
    # When their time is up, then the first gets 408 with its own id,
    status, headers, body = read_response(whole_head)
    assert (status, headers["x-request-id"]) == (408, "e2e-slow-body")
    assert_error_shape(headers, body, "request_timeout")
    line = assert_one_access_line(server, "e2e-slow-body", 408, "POST", "/v1/auth/token")
    assert line["duration_ms"] >= READ_TIMEOUT * 1000 * 0.9, "the time the request took to (not) arrive"
    # and the second, whose headers never arrived whole, a new one (its request line was read).
    status, headers, body = read_response(half_head)
    assert status == 408
    assert NEW_ID.match(headers["x-request-id"]), headers["x-request-id"]
    assert_error_shape(headers, body, "request_timeout")
    assert_one_access_line(server, headers["x-request-id"], 408, "POST", "/v1/auth/token")
    whole_head.close()
    half_head.close()


def test_connection_that_sends_nothing__closed_without_an_answer_or_a_log_line(server):
    before = len(log_lines(server))
    sock = connect(server)
    sock.settimeout(READ_TIMEOUT + 3)
    assert sock.recv(1024) == b"", "closed after the read timeout, nothing written"
    sock.close()
    assert not [line for line in log_lines(server)[before:] if line.get("logger") == "flagsvc.access"]


def test_log_has_no_traceback(server):
    assert "Traceback" not in Path(server.log_path or "").read_text()


def test_content_length_of_thousands_of_digits__413_in_the_error_shape_not_a_dropped_connection(server):
    """int() refuses more than 4,300 digits: the loop logged a traceback and closed without a word."""
    head = (
        b"POST /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: e2e-digits\r\n"
        + b"Content-Type: application/json\r\nContent-Length: "
        + b"9" * 5000
        + b"\r\n\r\n"
    )
    status, headers, body = exchange(server, head)
    assert status == 413
    assert_error_shape(headers, body, "payload_too_large")
    assert_one_access_line(server, "e2e-digits", 413, "POST", "/v1/flags")
    assert "Traceback" not in Path(server.log_path or "").read_text()


def _responses(data: bytes) -> list[int]:
    """The statuses of the responses one after another in `data` (each with a Content-Length)."""
    statuses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        statuses.append(int(lines[0].split()[1]))
        length = next(
            (int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")),
            0,
        )
        data = rest[length:]
    return statuses


def test_keep_alive__an_unread_body_over_64_kib__the_next_request_is_still_answered(server):
    """gunicorn drains at most 64 KiB of a body the view did not read, then closed a connection it had
    answered with keep-alive: the next request on it was lost."""
    body = b'{"a": "' + b"x" * 70_000 + b'"}'
    first = (
        b"POST /v1/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    second = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    sock = connect(server)
    try:
        sock.sendall(first + second)
        received = b""
        while piece := sock.recv(65536):
            received += piece
    finally:
        sock.close()
    assert _responses(received) == [401, 200]  # no token: answered without reading the body
