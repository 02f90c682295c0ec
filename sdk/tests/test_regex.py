"""The regex operator's RE2 engine and its plain-text shortcut (ADR 0004)."""

from __future__ import annotations

import re2  # type: ignore[import-untyped, unused-ignore]
from hypothesis import given
from hypothesis import strategies as st

from flagsvc_sdk.engine.regex import compile_search, linear_pattern, pattern_problem

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


linear_items = st.sampled_from(
    ["a", "b", "@", r"\.", ".", "[a-z]", "[^@]", "[0-9._%+-]", "[ab]", "[A-Z]", "é", "\n"]
)
quantifiers = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{2,}"])
linear_candidates = st.builds(
    lambda items, end: "^" + "".join(items) + ("$" if end else ""),
    st.lists(st.tuples(linear_items, quantifiers).map("".join), min_size=1, max_size=5),
    st.booleans(),
)
linear_texts = st.text(
    st.sampled_from(["a", "b", "@", ".", "-", "7", "Z", "é", "\n", "%"]), max_size=14
)


@given(pattern=linear_candidates, text=linear_texts)
def test_linear_path__answers_exactly_like_re2(pattern: str, text: str) -> None:
    assert pattern_problem(pattern) is None
    assert compile_search(pattern)(text) is (re2.search(pattern, text) is not None)


def test_linear_path__taken_for_the_email_pattern_refused_for_ambiguous_ones() -> None:
    assert linear_pattern(r"^[a-z0-9._%+-]+@acme\.com$") is not None
    assert linear_pattern(r"^[^@]+@[^@]+$") is not None
    for pattern in (
        r"^a*a*b",
        r"^.*@x",
        r"^(a+)+$",
        r"[a-z]+@acme",
        r"^\w+",
        r"^a+?b",
        r"^[a-z]+[a-c]",
    ):
        assert linear_pattern(pattern) is None, pattern


def test_linear_path__dollar_is_end_of_text_and_long_values_still_answer() -> None:
    search = compile_search(r"^[a-z0-9._%+-]+@acme\.com$")
    assert search("bob@acme.com")
    assert not search("bob@acme.com\n")  # Python's $ would match here; RE2's does not
    assert not search("a" * 100_000)  # past the length bound: RE2 answers
    assert search("a" * 5000 + "@acme.com")
    assert not search("\ud800@acme.com")  # not UTF-8: never matches, as on RE2
