"""The regex operator's RE2 engine and its plain-text shortcut (ADR 0004)."""

from __future__ import annotations

import re2  # type: ignore[import-untyped, unused-ignore]
from hypothesis import given
from hypothesis import strategies as st

from flagsvc_sdk.engine.regex import compile_search, pattern_problem

alphabet = st.sampled_from(["a", "b", ".", "-", "@", "é", "\n", "$", "^"])
texts = st.text(alphabet, max_size=12)
literal_patterns = st.builds(
    lambda start, body, end: ("^" if start else "") + body + ("$" if end else ""),
    st.booleans(),
    st.lists(
        st.sampled_from(["a", "b", "-", "@", "é", r"\.", r"\$", r"\^", r"\\"]), max_size=4
    ).map("".join),
    st.booleans(),
)


@given(pattern=literal_patterns, text=texts)
def test_plain_text_shortcut__answers_exactly_like_re2(pattern: str, text: str) -> None:
    assert pattern_problem(pattern) is None
    assert compile_search(pattern)(text) is (re2.search(pattern, text) is not None)


@given(
    pattern=st.sampled_from(["a.b", "(a|b)+$", "^[a-z]+@", "b{2}", r"\w+", "(?i)A"]),
    text=texts,
)
def test_re2_path__answers_like_re2_search(pattern: str, text: str) -> None:
    assert compile_search(pattern)(text) is (re2.search(pattern, text) is not None)


def test_search__non_strings_never_match() -> None:
    for pattern in ("a", "^a$", "a.b"):
        search = compile_search(pattern)
        assert not any(search(value) for value in (None, 1, 1.5, True, ["a"], {"a": "a"}, b"a"))
