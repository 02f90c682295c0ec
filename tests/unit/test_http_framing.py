"""Framing: when the worker's event loop holds a whole request (flagsvc/http_worker.py)."""

from __future__ import annotations

import pytest

from flagsvc.http_worker import Framing

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
