"""The ``regex`` operator on RE2 (``rules.md`` "Conditions"; ADR 0004 "Safe regular expressions").

RE2 matches in time linear in the input, whatever the pattern, so a pattern such as ``(a+)+$``
cannot stall an evaluation. It refuses what it cannot do in linear time (backreferences,
lookaround), and those refusals become 422s with a message that says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import re2  # type: ignore[import-untyped, unused-ignore]

from flagsvc_sdk.engine.values import is_utf8

Search = Callable[[Any], bool]

_OPTIONS: Final[Any] = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.never_capture = True
_UNANCHORED: Final[Any] = re2._re2.RE2.Anchor.UNANCHORED
_UNSUPPORTED: Final = {
    "(?=": "lookahead (?=...)",
    "(?!": "negative lookahead (?!...)",
    "(?<=": "lookbehind (?<=...)",
    "(?<!": "negative lookbehind (?<!...)",
    "(?P=": "a named backreference (?P=name)",
}
_BACKREFERENCE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]")
_METACHARACTERS: Final = frozenset("\\.^$|?*+()[]{}")
MAX_LINEAR_PATTERN_CHARS: Final = 256


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern``, in words a person can act on; ``None`` when it compiles."""
    try:
        re2.compile(pattern, _OPTIONS)
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    except re2.error as error:
        detail = error.args[0].decode("utf-8", "replace") if error.args else "refused"
        construct = next((name for marker, name in _UNSUPPORTED.items() if marker in pattern), None)
        if construct is None and _BACKREFERENCE.search(pattern):
            construct = "a backreference (\\1)"
        if construct is not None:
            return (
                f"uses {construct}, which RE2 does not support ({detail}): patterns run on RE2 so "
                "that matching stays linear-time; rewrite it without lookaround or backreferences"
            )
        return f"is not a valid RE2 regular expression ({detail})"
    return None


def plain_text(pattern: str) -> tuple[bool, str, bool] | None:
    """``(anchored_start, text, anchored_end)`` when ``pattern`` is plain text between optional
    anchors.
    """
    start = pattern.startswith("^")
    end = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1 if start else 0 : len(pattern) - 1 if end else len(pattern)]
    text: list[str] = []
    escaped = False
    for char in body:
        if escaped:
            if char.isalnum() or char == "_" or not char.isascii():
                return None
            text.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _METACHARACTERS:
            return None
        else:
            text.append(char)
    if escaped:
        return None
    return start, "".join(text), end


_LINEAR_MAX_CHARS: Final = 4096
"""Longer values go to RE2 even for a linear pattern: a bound on top of the proof."""
_CLASS_PUNCTUATION: Final = frozenset("._%+-@:/,=!#&'~` ;<>\"")
_QUANTIFIER: Final = re.compile(r"\*|\+|\?|\{([0-9]{1,3})(,([0-9]{0,3}))?\}")

CharSet = tuple[bool, frozenset[str]]
"""``(negated, chars)``: the characters one pattern item matches (all but ``chars`` if negated)."""


def _disjoint(one: CharSet, other: CharSet) -> bool:
    (not_one, one_chars), (not_other, other_chars) = one, other
    if not_one and not_other:
        return False  # both match almost everything
    if not_one:
        return other_chars <= one_chars
    if not_other:
        return one_chars <= other_chars
    return not one_chars & other_chars


def _class_items(body: str) -> frozenset[str] | None:
    """The characters of a ``[...]`` body made of ASCII letters and digits, ranges of them, and
    plain punctuation; ``None`` for anything else (escapes of letters, nested sets, ...)."""
    chars: set[str] = set()
    items: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if (
            char == "\\"
            and index + 1 < len(body)
            and body[index + 1] in _CLASS_PUNCTUATION | {"\\", "]", "[", "^"}
        ):
            items.append(body[index + 1])
            index += 2
            continue
        if char in "[]\\" or not (
            char.isascii() and (char.isalnum() or char in _CLASS_PUNCTUATION)
        ):
            return None
        items.append(char)
        index += 1
    position = 0
    while position < len(items):
        if position + 2 < len(items) and items[position + 1] == "-":
            low, high = items[position], items[position + 2]
            same_kind = (
                (low.isdigit() and high.isdigit())
                or (low.islower() and high.islower())
                or (low.isupper() and high.isupper())
            )
            if not same_kind or low > high:
                return None
            chars.update(chr(code) for code in range(ord(low), ord(high) + 1))
            position += 3
        else:
            chars.add(items[position])
            position += 1
    return frozenset(chars)


def linear_pattern(pattern: str) -> re.Pattern[str] | None:
    """A Python ``re`` pattern that answers exactly as RE2 does and runs in linear time, or
    ``None`` (the pattern then runs on RE2).

    Only for a pattern anchored with ``^`` that is a flat sequence of literals, escaped
    punctuation, ``.`` and ASCII character classes, each optionally quantified (``* + ? {m,n}``),
    where every repeated item matches no character that the rest of the pattern could start with
    at that point (``^[a-z0-9._%+-]+@acme\\.com$``: the class never holds ``@``). Greedy matching is
    then forced: every backtracking step fails at its first character, so a match is linear in the
    value, and with one start position (``^``) so is the whole search. A trailing ``$`` becomes
    ``\\Z`` (Python's ``$`` also matches before a final newline; RE2's does not).
    """
    if not pattern.startswith("^") or len(pattern) > MAX_LINEAR_PATTERN_CHARS:
        return None
    body, end = pattern[1:], ""
    if body.endswith("$") and not body.endswith("\\$"):
        body, end = body[:-1], "$"
    items: list[tuple[CharSet, int, bool]] = []  # (chars, minimum, repeats)
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            if index + 1 >= len(body) or body[index + 1].isalnum() or body[index + 1] == "_":
                return None
            chars: CharSet = (False, frozenset(body[index + 1]))
            index += 2
        elif char == "[":
            close = body.find("]", index + 2)
            if close < 0:
                return None
            negated = body[index + 1] == "^"
            members = _class_items(body[index + (2 if negated else 1) : close])
            if members is None or not members:
                return None
            chars = (negated, members)
            index = close + 1
        elif char == ".":
            chars = (True, frozenset("\n"))
            index += 1
        elif char in _METACHARACTERS:
            return None
        else:
            chars = (False, frozenset(char))
            index += 1
        minimum, repeats = 1, False
        quantifier = _QUANTIFIER.match(body, index)
        if quantifier is not None:
            text = quantifier.group(0)
            if text == "*":
                minimum, repeats = 0, True
            elif text == "+":
                minimum, repeats = 1, True
            elif text == "?":
                minimum, repeats = 0, True
            else:
                low = int(quantifier.group(1))
                high = low if quantifier.group(2) is None else quantifier.group(3)
                if high == "":
                    minimum, repeats = low, True
                else:
                    if int(high) < low:
                        return None
                    minimum, repeats = low, int(high) > low
            index = quantifier.end()
            if index < len(body) and body[index] in "?+":  # lazy or possessive: not ours
                return None
        items.append((chars, minimum, repeats))
    for position, (chars, _, repeats) in enumerate(items):
        if not repeats:
            continue
        for following, minimum, _ in items[position + 1 :]:
            if not _disjoint(chars, following):
                return None
            if minimum > 0:
                break
    try:
        return re.compile("^" + body + ("\\Z" if end else ""))
    except re.error:
        return None


def compile_search(pattern: str) -> Search:
    """Whether a value is a string in which the pattern is found (search, not full match).

    ``pattern`` must be one that ``pattern_problem`` accepted.

    Plain text between optional ``^``/``$`` becomes a string test with the same answer (RE2's ``$``
    matches only at the end of the text); any other pattern goes to RE2 itself. The RE2 object's
    ``Match`` is called directly: the public ``search`` wrapper builds a generator and decodes
    offsets on every call, which doubles the cost of a rule.
    """
    literal = plain_text(pattern)
    if literal is not None:
        start, text, end = literal
        if start and end:
            return lambda value: isinstance(value, str) and value == text
        if start:
            return lambda value: isinstance(value, str) and value.startswith(text)
        if end:
            return lambda value: isinstance(value, str) and value.endswith(text)
        return lambda value: isinstance(value, str) and text in value
    linear = linear_pattern(pattern)
    if linear is not None:
        fast = linear.match
        slow = _re2_search(pattern)

        def search_linear(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            if len(value) > _LINEAR_MAX_CHARS or not (value.isascii() or is_utf8(value)):
                return slow(value)
            return fast(value) is not None

        return search_linear
    return _re2_search(pattern)


def _re2_search(pattern: str) -> Search:
    match = re2.compile(pattern, _OPTIONS)._regexp.Match

    def search(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return bool(match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)

    return search
