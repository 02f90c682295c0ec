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
