"""Framing: when the worker's event loop holds a whole request; read_head: what it knows of one it
answers itself (flagsvc/http_worker.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagsvc.http_worker import Framing
from flagsvc.request_head import RequestHead, read_head

HEAD = b"POST /v1/flags HTTP/1.1\r\nHost: h\r\n"


def verdicts(*pieces: bytes, limit: int = 100) -> list[str]:
    framing = Framing(limit=limit, max_head_bytes=1000)
    data = bytearray()
    seen = []
    for piece in pieces:
        data += piece
        seen.append(framing.feed(data))
    return seen


def test_framing__content_length__complete_only_with_the_last_body_byte() -> None:
    assert verdicts(HEAD, b"Content-Length: 5\r\n\r\nabc", b"de") == ["incomplete", "incomplete", "complete"]


def test_framing__no_body__complete_with_the_head() -> None:
    assert verdicts(b"GET /healthz HTTP/1.1\r\n", b"Host: h\r\n\r\n") == ["incomplete", "complete"]


def test_framing__announced_body_over_the_limit__too_large_before_it_arrives() -> None:
    assert verdicts(HEAD + b"Content-Length: 101\r\n\r\n") == ["too_large"]


def test_framing__content_length_of_thousands_of_digits__too_large_never_an_exception() -> None:
    """int() refuses a string of more than 4,300 digits: the loop logged a traceback and dropped the
    connection without an answer."""
    assert verdicts(HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n") == ["too_large"]
    assert verdicts(HEAD + b"Content-Length: " + b"1" + b"0" * 30 + b"\r\n\r\n") == ["too_large"]


def test_framing__content_length_with_thousands_of_leading_zeros__its_value() -> None:
    assert verdicts(HEAD + b"Content-Length: " + b"0" * 5000 + b"3\r\n\r\nab", b"c") == [
        "incomplete",
        "complete",
    ]


def test_framing__chunked__complete_after_the_last_chunk_and_trailers() -> None:
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    assert verdicts(head, b"3\r\nabc\r\n", b"2;ext=1\r\nde\r\n", b"0\r\n", b"\r\n") == [
        "incomplete",
        "incomplete",
        "incomplete",
        "incomplete",
        "complete",
    ]
    assert verdicts(head + b"0\r\nX-Trailer: 1\r\n", b"\r\n") == ["incomplete", "complete"]


def test_framing__chunked_over_the_limit__too_large_from_the_chunk_sizes() -> None:
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    first = head + b"64\r\n" + b"x" * 100 + b"\r\n"  # 100 bytes: at the limit
    assert verdicts(first, b"1\r\n") == ["incomplete", "too_large"]


@pytest.mark.parametrize(
    "head",
    [
        HEAD + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
        HEAD + b"Content-Length: x\r\n\r\n",
        HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["two-lengths", "bad-length", "length-and-chunked", "not-chunked-last", "bad-chunk-size"],
)
def test_framing__malformed_framing__left_to_gunicorns_parser(head: bytes) -> None:
    assert verdicts(head) == ["parse"]


def test_framing__head_past_its_limit__left_to_gunicorns_parser() -> None:
    assert verdicts(b"GET /" + b"a" * 1001) == ["parse"]


def test_read_head__whole_head__method_path_without_query_and_headers_by_lower_case_name() -> None:
    head = read_head(
        b"POST /v1/fl%C3%A9gs%20x?dry_run=1 HTTP/1.1\r\nHost: h\r\nX-Request-ID:  rid-1 \r\n\r\n{", 8190
    )
    assert head == RequestHead("POST", "/v1/fl\u00e9gs x", {"host": "h", "x-request-id": "rid-1"})


def test_read_head__head_not_whole__request_line_only() -> None:
    assert read_head(b"GET /v1/flags HTTP/1.1\r\nX-Request-ID: rid-1\r\nHo", 8190) == RequestHead(
        "GET", "/v1/flags"
    )
    assert read_head(b"GET /v1/fla", 8190) == RequestHead()


@pytest.mark.parametrize(
    "line",
    [
        b"NOT A REQUEST LINE",
        b"GET /v1/flags",
        b"G(T /v1/flags HTTP/1.1",
        b"GET /v1/" + b"a" * 100 + b" HTTP/1.1",
    ],
    ids=["four-parts", "two-parts", "method-not-a-token", "over-the-limit"],
)
def test_read_head__request_line_a_parser_refuses__nothing_known(line: bytes) -> None:
    assert read_head(line + b"\r\nX-Request-ID: rid-1\r\n\r\n", 100) == RequestHead()


@pytest.mark.parametrize(
    "bad", [b"X-Broken: a\x00b", b"X-Broken: a\x01b", b"Bad Header", b"X-Broken : a", b" folded"]
)
def test_read_head__malformed_field__the_fields_before_it_only(bad: bytes) -> None:
    head = read_head(b"GET / HTTP/1.1\r\nX-Request-ID: rid-1\r\n" + bad + b"\r\nX-After: 1\r\n\r\n", 8190)
    assert head.headers == {"x-request-id": "rid-1"}


def test_read_head__repeated_field_joined__underscore_names_dropped_as_gunicorn_drops_them() -> None:
    head = read_head(b"GET / HTTP/1.1\r\nX-Request-ID: a\r\nX_Request_ID: b\r\nx-request-id: c\r\n\r\n", 8190)
    assert head.headers == {"x-request-id": "a,c"}


def test_read_head__path_as_django_has_it() -> None:
    """Absolute form, a path starting `//`, and bytes that are not UTF-8 (re-percent-encoded)."""
    assert read_head(b"GET http://h/v1/x?q HTTP/1.1\r\n\r\n", 8190).path == "/v1/x"
    assert read_head(b"GET //v1/x HTTP/1.1\r\n\r\n", 8190).path == "//v1/x"
    assert read_head(b"GET /a%FFb HTTP/1.1\r\n\r\n", 8190).path == "/a%FFb"
    assert read_head(b"GET http://[/x HTTP/1.1\r\n\r\n", 8190).path is None


_HEAD_PIECES = st.sampled_from(
    [b"GET", b"POST", b" ", b"/", b"%", b"%C3", b"%FF", b"?", b"//", b"http://[", b"HTTP/1.1", b"\r\n",
     b"\r\n\r\n", b":", b"X-Request-ID", b"X_Request_ID", b"\x00", b"\t", b"a", b"\xff", b"\xc3\xa9"]
)  # fmt: skip


@given(st.lists(st.one_of(_HEAD_PIECES, st.binary(max_size=8)), max_size=40))
def test_read_head__any_bytes__never_raises(pieces: list[bytes]) -> None:
    """It runs in the worker's event loop on whatever a client sent: an exception there would end the worker."""
    head = read_head(bytearray(b"".join(pieces)), 64)
    assert all(name == name.lower() for name in head.headers)
