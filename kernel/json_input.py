"""The one reader of JSON text that comes in: every `/v1` body (DRF's parser and the evaluation fast
lane), the admin's JSON boxes and imported documents all go through `parse_json`.

It accepts only JSON that every SDK reads the same way (the engine's `validate_json`):

- not JSON at all (bad syntax, the `NaN`/`Infinity` literals) → `NotJson`, a 400
  `malformed_request` on the API (as are bytes that do not decode);
- nesting past `MAX_JSON_DEPTH` (64) levels → `ValidationFailed` at `body`, a 422. It is measured
  on the text *before* parsing: Python's parser recurses and a 10,000-level body would end in
  `RecursionError`. The deepest flag the rules allow nests 35 levels (`MAX_CONDITION_DEPTH`);
- a number no double holds (`1e999`, a 400-digit integer), NUL or a lone surrogate in a string or
  a field name → `ValidationFailed` naming the field (`user.attributes.n`), a 422. NUL cannot be
  stored or compared in PostgreSQL text, a lone surrogate cannot be written as UTF-8: refusing them
  here means no stored, filtered or echoed string can carry one.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Mapping
from itertools import accumulate
from typing import IO, Any

from flagsvc_sdk.engine import MAX_JSON_DEPTH, ValidationFailed, validate_json
from rest_framework import renderers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+')
"""A JSON string (its brackets do not nest) or a run of anything but brackets and quotes."""
_LEVELS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
_BEYOND_ANY_DOUBLE = 2**53
"""What a 21-digit-or-longer integer is read as: past the portable range, whatever its value, so
that the check names it without converting 8,000 digits (Python refuses past 4,300)."""


class NotJson(ValueError):
    """The text is not JSON; the message says where or why."""


def parse_json(text: str, *, root: str = "body") -> Any:
    """The JSON value of `text`, or `NotJson` / `ValidationFailed` (see the module docstring).

    `root` names the value itself in a problem (`body` for a request, a form field's name in the
    admin); problems inside it are named by their path from there (`rules[0].when.value`).
    """
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth(text) > MAX_JSON_DEPTH:
        raise ValidationFailed(
            {root: [f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays"]}, subject=root
        )
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise NotJson(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    validate_json(value, root=root)
    return value


def nesting_depth(text: str) -> int:
    """How deep the objects and arrays of JSON `text` nest, counted without parsing it."""
    # Only brackets are left (and the quote of a string that never ends, deleted by translate).
    brackets = _NOT_BRACKETS.sub("", text).encode("ascii", "ignore").translate(_LEVELS, b'"')
    return max(accumulate(array("b", brackets)), default=0)


def _integer(digits: str) -> int:
    if len(digits) > 20:
        return -_BEYOND_ANY_DOUBLE if digits.startswith("-") else _BEYOND_ANY_DOUBLE
    return int(digits)


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value: numbers must be finite")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_integer)
"""Made once: `json.loads` with options builds a new decoder on every call (a few µs a request)."""


class JsonBodyParser(BaseParser):
    """DRF's parser for `application/json` bodies, reading through `parse_json`."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = stream.read().decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError(f"the body is not text in {encoding}: {exc}") from None
        try:
            return parse_json(text)
        except NotJson as exc:
            raise ParseError(str(exc)) from None
