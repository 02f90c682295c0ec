"""The operator table of ``rules.md`` "Conditions": what each operator accepts and when it is true.

``value_problems`` checks a condition's ``value`` on write; ``make_test`` turns a checked value into
a test of the user's attribute value. A test answers ``False`` for a missing (``None``) or wrongly
typed attribute, except ``not_exists``, and never raises. Equality never coerces types: ``True`` is
not ``1``, ``"1"`` is not ``1``, while ``1`` equals ``1.0`` as numbers do.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from flagsvc_sdk.engine.limits import MAX_PATTERN_CHARS
from flagsvc_sdk.engine.regex import compile_search, pattern_problem, plain_text
from flagsvc_sdk.engine.values import instant, is_number, numeric, semver_key

Test = Callable[[Any], bool]
Problem = tuple[str, str]
"""``(path suffix, message)``: ``""`` is the value itself, ``"[1]"`` one of its elements."""

NO_VALUE_OPERATORS: Final = frozenset({"exists", "not_exists"})
_SCALAR_OPERATORS: Final = frozenset({"eq", "neq", "contains"})
_LIST_OPERATORS: Final = frozenset({"in", "not_in"})
_STRING_OPERATORS: Final = frozenset({"starts_with", "ends_with"})
_NUMBER_OPERATORS: Final = frozenset({"lt", "lte", "gt", "gte"})
_SEMVER_OPERATORS: Final = frozenset(
    {"semver_eq", "semver_lt", "semver_lte", "semver_gt", "semver_gte"}
)
_INSTANT_OPERATORS: Final = frozenset({"before", "after"})
OPERATORS: Final = (
    NO_VALUE_OPERATORS
    | _SCALAR_OPERATORS
    | _LIST_OPERATORS
    | _STRING_OPERATORS
    | _NUMBER_OPERATORS
    | _SEMVER_OPERATORS
    | _INSTANT_OPERATORS
    | {"regex", "between"}
)
_SCALAR_MESSAGE: Final = "must be a string, a number or a boolean"
_NUMBER_TYPES: Final = frozenset({int, float})
_SCALAR_TYPES: Final = (str, int, float)
_ORDER: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or is_number(value)


def value_problems(op: str, value: Any, has_value: bool) -> list[Problem]:
    """What is wrong with ``value`` for ``op`` (which must be in ``OPERATORS``); empty when it is
    fine.
    """
    if op in NO_VALUE_OPERATORS:
        if has_value and value is not None:
            return [("", f"{op} takes no value: remove it")]
        return []
    if not has_value or value is None:
        return [("", f"required for operator {op}")]
    if op in _SCALAR_OPERATORS:
        return [] if _is_scalar(value) else [("", _SCALAR_MESSAGE)]
    if op in _LIST_OPERATORS:
        if not isinstance(value, list):
            return [("", f'{op} needs a list of values, e.g. ["NL", "BE"]')]
        return [
            (f"[{index}]", _SCALAR_MESSAGE)
            for index, item in enumerate(value)
            if not _is_scalar(item)
        ]
    if op in _STRING_OPERATORS:
        return [] if isinstance(value, str) else [("", f"{op} needs a string")]
    if op == "regex":
        return _pattern_problems(value)
    if op in _NUMBER_OPERATORS:
        return [] if is_number(value) else [("", f"{op} needs a number")]
    if op == "between":
        return _range_problems(value)
    if op in _SEMVER_OPERATORS:
        if semver_key(value) is None:
            return [("", f'{op} needs a semantic version such as "2.10.0" or "1.0.0-rc.1"')]
        return []
    if instant(value) is None:
        return [("", f'{op} needs an ISO 8601 date-time ("2026-11-22T10:00:00Z") or epoch seconds')]
    return []


def _pattern_problems(value: Any) -> list[Problem]:
    if not isinstance(value, str):
        return [("", "regex needs a pattern string")]
    if len(value) > MAX_PATTERN_CHARS:
        return [("", f"pattern is {len(value)} characters; at most {MAX_PATTERN_CHARS}")]
    problem = pattern_problem(value)
    return [] if problem is None else [("", f"pattern {problem}")]


def _range_problems(value: Any) -> list[Problem]:
    if not isinstance(value, list) or len(value) != 2:
        return [("", "between needs [lo, hi]: two numbers, true when lo <= attribute < hi")]
    problems = [
        (f"[{index}]", "must be a number")
        for index, item in enumerate(value)
        if not is_number(item)
    ]
    if not problems and value[0] > value[1]:
        problems.append(("", "lo must not be greater than hi"))
    return problems


def make_test(op: str, value: Any) -> Test:
    """The test of an attribute value for ``op`` and a ``value`` that ``value_problems`` passed."""
    if op == "exists":
        return lambda actual: actual is not None
    if op == "not_exists":
        return lambda actual: actual is None
    if op == "eq":
        return _equals(value)
    if op == "neq":
        equals = _equals(value)
        return lambda actual: _is_scalar_type(actual) and not equals(actual)
    if op == "in":
        return _member_of(value)
    if op == "not_in":
        member = _member_of(value)
        return lambda actual: _is_scalar_type(actual) and not member(actual)
    if op == "contains":
        return _contains(value)
    if op == "starts_with":
        return lambda actual: isinstance(actual, str) and actual.startswith(value)
    if op == "ends_with":
        return lambda actual: isinstance(actual, str) and actual.endswith(value)
    if op == "regex":
        return compile_search(value)
    if op in _NUMBER_OPERATORS or op == "between":
        return _numeric_test(op, value)
    if op in _SEMVER_OPERATORS:
        return _semver_test(op, value)
    if op in _INSTANT_OPERATORS:
        return _instant_test(op, value)
    raise ValueError(f"unknown operator {op!r}")


def _is_scalar_type(actual: Any) -> bool:
    """A present scalar of any type: ``neq``/``not_in`` against another type is true."""
    return isinstance(actual, _SCALAR_TYPES)


def _equals(expected: Any) -> Test:
    if isinstance(expected, bool):
        return lambda actual: actual is expected
    if isinstance(expected, str):
        return lambda actual: isinstance(actual, str) and actual == expected
    return lambda actual: type(actual) in _NUMBER_TYPES and actual == expected


def _member_of(values: list[Any]) -> Test:
    strings = frozenset(item for item in values if isinstance(item, str))
    booleans = frozenset(item for item in values if isinstance(item, bool))
    numbers = frozenset(item for item in values if is_number(item))
    if not booleans and not numbers:
        return lambda actual: isinstance(actual, str) and actual in strings

    def member(actual: Any) -> bool:
        if isinstance(actual, str):
            return actual in strings
        if isinstance(actual, bool):
            return actual in booleans
        return type(actual) in _NUMBER_TYPES and actual in numbers

    return member


def _contains(expected: Any) -> Test:
    equals = _equals(expected)
    is_text = isinstance(expected, str)

    def contains(actual: Any) -> bool:
        if isinstance(actual, str):
            return is_text and expected in actual
        if isinstance(actual, list):
            return any(equals(item) for item in actual)
        return False

    return contains


def _numeric_test(op: str, value: Any) -> Test:
    if op == "between":
        low, high = value

        def between(actual: Any) -> bool:
            if type(actual) in _NUMBER_TYPES:
                return bool(low <= actual < high)
            number = numeric(actual)
            return number is not None and low <= number < high

        return between
    compare = _ORDER[op]

    def test(actual: Any) -> bool:
        if type(actual) in _NUMBER_TYPES:
            return bool(compare(actual, value))
        number = numeric(actual)
        return number is not None and bool(compare(number, value))

    return test


def _semver_test(op: str, value: Any) -> Test:
    expected = semver_key(value)
    if expected is None:
        raise ValueError(f"not a semantic version: {value!r}")
    compare = _ORDER[op.removeprefix("semver_")]

    def test(actual: Any) -> bool:
        key = semver_key(actual)
        return key is not None and bool(compare(key, expected))

    return test


def _instant_test(op: str, value: Any) -> Test:
    moment = instant(value)
    if moment is None:
        raise ValueError(f"not an ISO 8601 date-time or epoch seconds: {value!r}")
    compare = operator.lt if op == "before" else operator.gt

    def test(actual: Any) -> bool:
        seconds = instant(actual)
        return seconds is not None and compare(seconds, moment)

    return test


class Check:
    """A compiled condition: ``holds(user_id, attributes)`` says whether it holds for the user.

    A native class, not a closure: compiled (ADR 0006), the walk calls ``holds`` directly, where a
    closure is a Python call that parses its arguments on every use. The leaf checks below are the
    one-call forms of ``make_test`` for the commonest operators; ``conditions`` adds the generic
    leaf, the combinators and segments.
    """

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        raise NotImplementedError


class TextEquals(Check):
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        # Narrowed to ``str`` first: compiled, the compare is then a length test and a memcmp
        # rather than a generic rich comparison (which a ``str`` subclass could also override).
        actual = attributes.get(self.name)
        return isinstance(actual, str) and actual == self.text


class Is(Check):
    def __init__(self, name: str, value: bool) -> None:
        self.name = name
        self.value = value

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        return attributes.get(self.name) is self.value


class TextIn(Check):
    def __init__(self, name: str, texts: frozenset[str]) -> None:
        self.name = name
        self.texts = texts

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        actual = attributes.get(self.name)
        return isinstance(actual, str) and actual in self.texts


class Exists(Check):
    def __init__(self, name: str, present: bool) -> None:
        self.name = name
        self.present = present

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        return (attributes.get(self.name) is not None) == self.present


class Between(Check):
    def __init__(self, name: str, low: Any, high: Any) -> None:
        self.name = name
        self.low = low
        self.high = high

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        actual = attributes.get(self.name)
        if type(actual) in _NUMBER_TYPES:
            return bool(self.low <= actual < self.high)
        number = numeric(actual)
        return number is not None and bool(self.low <= number < self.high)


class TextStartsWith(Check):
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        actual = attributes.get(self.name)
        return isinstance(actual, str) and actual.startswith(self.text)


class TextEndsWith(Check):
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        actual = attributes.get(self.name)
        return isinstance(actual, str) and actual.endswith(self.text)


class TextContains(Check):
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        actual = attributes.get(self.name)
        return isinstance(actual, str) and self.text in actual


def make_predicate(op: str, value: Any, name: str) -> Check | None:
    """A one-call check for the commonest operators on a top-level attribute ``name``.

    Each answers exactly like ``make_test(op, value)(attributes.get(name))`` but saves the second
    call, a good share of a rule's cost; ``None`` means "use the generic form". The property test
    that compares traced (generic) and untraced evaluation keeps them equal.
    """
    if op == "eq" and isinstance(value, str):
        return TextEquals(name, value)
    if op == "eq" and isinstance(value, bool):
        return Is(name, value)
    if op == "in" and all(isinstance(item, str) for item in value):
        return TextIn(name, frozenset(value))
    if op == "exists":
        return Exists(name, True)
    if op == "not_exists":
        return Exists(name, False)
    if op == "between":
        low, high = value
        return Between(name, low, high)
    if op == "regex":
        return _plain_text_check(value, name)
    return None


def _plain_text_check(pattern: str, name: str) -> Check | None:
    literal = plain_text(pattern)
    if literal is None:
        return None
    start, text, end = literal
    if start and end:
        return TextEquals(name, text)
    if end:
        return TextEndsWith(name, text)
    if start:
        return TextStartsWith(name, text)
    return TextContains(name, text)
