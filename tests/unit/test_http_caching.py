"""Conditional requests and content codings as RFC 9110 reads them (kernel.http_caching)."""

from __future__ import annotations

import gzip

import pytest

from kernel.http_caching import accepts_gzip, gzip_bytes, if_none_match_matches


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *;q=1", False),
        ("*", True),
        ("*;q=0", False),
        ("identity", False),
        ("br;q=1, deflate", False),
        ("gzip;q=abc", False),
        ("gzip" + ", a" * 3000, False),  # longer than anyone sends: not read
    ],
)
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ('"7"', True),
        ('W/"7"', True),
        ('"6", "7"', True),
        ("*", True),
        ('"70"', False),
        ("7", False),
    ],
)
def test_if_none_match_matches(header, expected):
    assert if_none_match_matches(header, '"7"') is expected


def test_gzip_bytes__the_same_body_always_gives_the_same_bytes():
    body = b'{"flags":[]}' * 100
    assert gzip_bytes(body) == gzip_bytes(body)
    assert gzip.decompress(gzip_bytes(body)) == body
