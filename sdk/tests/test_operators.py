"""Every operator of rules.md "Conditions", including missing attributes and wrong types."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from builders import leaf, matches, user

MISSING = object()


def holds(op: str, value: Any, actual: Any) -> bool:
    attributes = {} if actual is MISSING else {"a": actual}
    return matches(leaf("a", op, value), user("u-1", **attributes))


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        ("NL", "NL", True),
        ("NL", "nl", False),
        ("NL", "NL ", False),
        (1, 1, True),
        (1, 1.0, True),
        (1.5, 1.5, True),
        (1, True, False),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        (False, False, True),
        ("1", 1, False),
        (1, "1", False),
        ("NL", ["NL"], False),
        ("NL", {"NL": 1}, False),
    ],
)
def test_eq__no_type_coercion_and_case_sensitive(value: Any, actual: Any, expected: bool) -> None:
    assert holds("eq", value, actual) is expected


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        ("NL", "DE", True),
        ("NL", "NL", False),
        ("NL", "nl", True),
        (1, 1.0, False),
        (True, 1, True),
        (1, True, True),
        ("1", 1, True),
        ("NL", ["DE"], False),
        ("NL", {"a": 1}, False),
    ],
)
def test_neq__is_the_negation_of_eq_for_present_scalars(
    value: Any, actual: Any, expected: bool
) -> None:
    assert holds("neq", value, actual) is expected


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        (["NL", "BE"], "NL", True),
        (["NL", "BE"], "nl", False),
        (["NL", "BE"], "DE", False),
        ([1, 2], 1.0, True),
        ([1, 2], True, False),
        ([True], 1, False),
        ([True], True, True),
        ([False, "x"], False, True),
        (["1"], 1, False),
        ([1, "a", True], "a", True),
        ([], "NL", False),
        (["NL"], ["NL"], False),
    ],
)
def test_in__membership_without_coercion(value: Any, actual: Any, expected: bool) -> None:
    assert holds("in", value, actual) is expected


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        (["NL", "BE"], "DE", True),
        (["NL", "BE"], "NL", False),
        ([1], True, True),
        ([True], 1, True),
        ([1], 1.0, False),
        (["NL"], ["DE"], False),
        ([], "NL", True),
    ],
)
def test_not_in__membership_negated_for_present_scalars(
    value: Any, actual: Any, expected: bool
) -> None:
    assert holds("not_in", value, actual) is expected


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        ("@acme", "bob@acme.com", True),
        ("@ACME", "bob@acme.com", False),
        ("b", ["a", "b"], True),
        ("c", ["a", "b"], False),
        (1, [1.0, 2], True),
        (1, [True], False),
        (True, [1], False),
        (True, [True], True),
        (1, "1", False),
        ("a", 5, False),
        ("a", {"a": 1}, False),
    ],
)
def test_contains__substring_or_list_element(value: Any, actual: Any, expected: bool) -> None:
    assert holds("contains", value, actual) is expected


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("starts_with", "beta-", "beta-42", True),
        ("starts_with", "beta-", "Beta-42", False),
        ("starts_with", "beta-", "x-beta-", False),
        ("starts_with", "1", 12, False),
        ("ends_with", "@acme.com", "bob@acme.com", True),
        ("ends_with", "@acme.com", "bob@acme.com.evil", False),
        ("ends_with", "2", 12, False),
        ("ends_with", "a", ["a"], False),
    ],
)
def test_starts_with_ends_with__strings_only(
    op: str, value: str, actual: Any, expected: bool
) -> None:
    assert holds(op, value, actual) is expected


@pytest.mark.parametrize(
    ("pattern", "actual", "expected"),
    [
        ("b", "abc", True),
        ("^a.c$", "abc", True),
        ("^a.c$", "abcd", False),
        (r"@acme\.com$", "bob@acme.com", True),
        (r"@acme\.com$", "bob@acmeXcom", False),
        (r"@acme\.com$", "bob@acme.com\n", False),
        ("^$", "", True),
        ("^beta", "beta-1", True),
        ("^beta", "a-beta", False),
        ("(?i)ACME", "acme", True),
        (r"^\d{3}$", "123", True),
        ("^é+$", "ééé", True),
        ("^.$", "€", True),
        ("abc", 123, False),
        ("1", 1, False),
        ("a", ["a"], False),
    ],
)
def test_regex__searches_strings(pattern: str, actual: Any, expected: bool) -> None:
    assert holds("regex", pattern, actual) is expected


def test_regex__catastrophic_pattern_is_linear_and_false() -> None:
    """``(a+)+$`` backtracks exponentially in a backtracking engine; RE2 is linear.

    Only correctness is asserted: a wall-time assertion would be flaky, and a backtracking engine
    would not finish at all on this input.
    """
    assert holds("regex", "(a+)+$", "a" * 10_000 + "b") is False
    assert holds("regex", "(a+)+$", "a" * 10_000) is True


def test_regex__string_that_is_not_valid_unicode_does_not_match() -> None:
    assert holds("regex", "^x.y", "x\ud800y") is False


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("lt", 30, 29, True),
        ("lt", 30, 30, False),
        ("lte", 30, 30, True),
        ("lte", 30, 30.5, False),
        ("gt", 30, 30.5, True),
        ("gt", 30, 30, False),
        ("gte", 30, 30, True),
        ("gte", 30, 29.999, False),
        ("lt", 30, "29", True),
        ("lt", 30, "29.5", True),
        ("gt", 30, "3.5e1", True),
        ("gte", -1, "-1", True),
        ("lt", 30, " 29", False),
        ("lt", 30, "29abc", False),
        ("lt", 30, "nan", False),
        ("lt", 30, "inf", False),
        ("gt", 0, "1e999", False),
        ("lt", 30, True, False),
        ("gt", 0, True, False),
        ("lt", 30, [1], False),
        ("lt", 30, None, False),
    ],
)
def test_numeric_comparisons__numbers_and_numeric_strings(
    op: str, value: Any, actual: Any, expected: bool
) -> None:
    assert holds(op, value, actual) is expected


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (30, True),
        (35.5, True),
        (39.999, True),
        (40, False),
        (29.999, False),
        ("35", True),
        ("40", False),
        (True, False),
        ("thirty", False),
    ],
)
def test_between__lo_inclusive_hi_exclusive(actual: Any, expected: bool) -> None:
    assert holds("between", [30, 40], actual) is expected


SEMVER_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.9.1",
    "2.10.0",
    "10.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.pairwise(SEMVER_ORDER)))
def test_semver__precedence_follows_semver_2(lower: str, higher: str) -> None:
    assert holds("semver_lt", higher, lower) is True
    assert holds("semver_gt", lower, higher) is True
    assert holds("semver_lte", higher, lower) is True
    assert holds("semver_gte", lower, higher) is True
    assert holds("semver_eq", higher, lower) is False
    assert holds("semver_lt", lower, higher) is False


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("semver_eq", "1.0.0", "1.0.0+build.7", True),
        ("semver_lte", "1.0.0", "1.0.0", True),
        ("semver_gte", "1.0.0", "1.0.0", True),
        ("semver_gt", "2.9.1", "2.10.0", True),
        ("semver_eq", "1.0.0", "v1.0.0", False),
        ("semver_eq", "1.0.0", "1.0", False),
        ("semver_lt", "2.0.0", "01.0.0", False),
        ("semver_lt", "2.0.0", "1.0.0-01", False),
        ("semver_lt", "2.0.0", "1.0.0-", False),
        ("semver_lt", "2.0.0", 1, False),
        ("semver_lt", "2.0.0", ["1.0.0"], False),
    ],
)
def test_semver__build_metadata_ignored_and_invalid_attribute_false(
    op: str, value: str, actual: Any, expected: bool
) -> None:
    assert holds(op, value, actual) is expected


NEW_YEAR = "2026-01-01T00:00:00Z"
NEW_YEAR_EPOCH = 1767225600


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("before", NEW_YEAR, "2025-12-31T23:59:59Z", True),
        ("before", NEW_YEAR, "2026-01-01T01:00:00+02:00", True),
        ("before", NEW_YEAR, "2025-12-31T23:00:00", True),
        ("before", NEW_YEAR, "2025-12-31", True),
        ("before", NEW_YEAR, NEW_YEAR_EPOCH - 1, True),
        ("before", NEW_YEAR, NEW_YEAR_EPOCH - 0.5, True),
        ("before", NEW_YEAR, NEW_YEAR_EPOCH, False),
        ("after", NEW_YEAR, NEW_YEAR_EPOCH, False),
        ("before", NEW_YEAR, "2026-01-01T00:00:00+00:00", False),
        ("after", NEW_YEAR, "2026-01-01T00:00:01Z", True),
        ("after", NEW_YEAR, "2026-01-01T00:30:00+01:00", False),
        ("after", NEW_YEAR_EPOCH, "2026-01-01T00:00:00.5Z", True),
        ("before", NEW_YEAR, "yesterday", False),
        ("before", NEW_YEAR, True, False),
        ("before", NEW_YEAR, ["2025-01-01"], False),
    ],
)
def test_before_after__iso_8601_or_epoch_seconds(
    op: str, value: Any, actual: Any, expected: bool
) -> None:
    assert holds(op, value, actual) is expected


@pytest.mark.parametrize(
    ("actual", "exists"),
    [
        ("x", True),
        (0, True),
        ("", True),
        (False, True),
        ([], True),
        (None, False),
        (MISSING, False),
    ],
)
def test_exists_not_exists__null_counts_as_absent(actual: Any, exists: bool) -> None:
    assert holds("exists", None, actual) is exists
    assert holds("not_exists", None, actual) is not exists


OPERATORS_WITH_VALUES = [
    ("eq", "x"),
    ("neq", "x"),
    ("in", ["x"]),
    ("not_in", ["x"]),
    ("contains", "x"),
    ("starts_with", "x"),
    ("ends_with", "x"),
    ("regex", "x"),
    ("lt", 1),
    ("lte", 1),
    ("gt", 1),
    ("gte", 1),
    ("between", [0, 1]),
    ("semver_eq", "1.0.0"),
    ("semver_lt", "1.0.0"),
    ("semver_lte", "1.0.0"),
    ("semver_gt", "1.0.0"),
    ("semver_gte", "1.0.0"),
    ("before", NEW_YEAR),
    ("after", NEW_YEAR),
    ("exists", None),
]


@pytest.mark.parametrize(("op", "value"), OPERATORS_WITH_VALUES)
@pytest.mark.parametrize("actual", [MISSING, None])
def test_every_operator__false_on_missing_or_null_attribute(
    op: str, value: Any, actual: Any
) -> None:
    assert holds(op, value, actual) is False


@pytest.mark.parametrize("actual", [MISSING, None])
def test_not_exists__true_on_missing_or_null_attribute(actual: Any) -> None:
    assert holds("not_exists", None, actual) is True
