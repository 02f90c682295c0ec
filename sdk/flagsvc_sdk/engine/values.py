"""How user values are read and interpreted for ``rules.md`` "Conditions" and "Bucketing".

Every function here answers ``None`` for a value it cannot use, so that a wrong type makes a
condition false and never raises.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Final

from flagsvc_sdk.engine.limits import MAX_SAFE_INTEGER, MAX_USER_ID_CHARS

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC_STRING: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_STRING: Final = re.compile(r"[+-]?[0-9]+")
_SEMVER_IDENTIFIER: Final = re.compile(r"[0-9A-Za-z-]+")
_MAX_NUMERIC_STRING_CHARS: Final = 64
_MAX_SEMVER_CHARS: Final = 256
_MAX_INSTANT_CHARS: Final = 64

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def is_number(value: object) -> bool:
    """A JSON number: ``int`` or finite ``float``, never ``bool``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it fails only on lone surrogates, e.g. JSON
    ``"\\ud800"``).

    ``mmh3.hash`` crashes the process on such a string, so nothing unchecked reaches it.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_portable_json(value: Any, levels: int) -> bool:
    """Whether ``value`` is JSON that every reader takes the same way, nesting at most ``levels``.

    The quick yes of ``problems.portable_json_problems`` (which says what and where, and is used
    when this answers no): integers within +-(2**53 - 1), finite floats, strings of Unicode text
    without NUL (field names included), objects and arrays at most ``levels`` deep. It recurses at
    most ``levels`` calls deep, whatever the depth of ``value``.
    """
    kind = type(value)
    if kind is str:
        return _is_storable_text(value)
    if kind is dict:
        if levels <= 0:
            return False
        for name, child in value.items():
            if type(name) is not str or not _is_storable_text(name):
                return False
            if not is_portable_json(child, levels - 1):
                return False
        return True
    if kind is list:
        if levels <= 0:
            return False
        for child in value:  # noqa: SIM110 - a loop, not a generator: every request body passes here
            if not is_portable_json(child, levels - 1):
                return False
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool


def user_parts(user: Any) -> tuple[str, dict[str, Any]]:
    """``validation.validate_user``'s quick branch, as the two things evaluation reads: the user's
    id and attributes, or ``("", {})`` to say "take the full branch" (``check_user_in_full``), which
    then says what is wrong (or normalises an unusual but valid user). Here rather than in
    ``validation`` because it is compiled with the engine (the SDK's typed calls call it, and a
    native tuple comes back without an allocation or a second lookup of each part);
    ``test_user_check`` proves it answers as the full branch does wherever it answers.

    A plain ``dict`` with a valid ``id`` and an ``attributes`` dict answers with its own attributes
    (evaluation never changes them); ``{"id": ...}`` alone gets empty attributes. Every SDK call
    checks its user here, so this is a few type tests, not the full validation with its problem
    list. Attribute names are not looked at, here or in the full branch: a condition reads an
    attribute by its (string) name, so a name of another type (only Python code can make one; a
    JSON object's names are strings) is never read, like any attribute no condition names, and
    walking the names cost a third of a typed call.
    """
    # ``isinstance`` first: compiled, it makes the ``get`` calls below the dict's own (no method
    # lookup); ``type(...) is dict`` then keeps subclasses, whose methods may do anything, out.
    if not isinstance(user, dict) or type(user) is not dict:
        return "", {}
    user_id = user.get("id")
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS:
        return "", {}
    if not user_id.isascii() and not is_utf8(user_id):
        return "", {}
    size = len(user)
    attributes = user.get("attributes")
    if isinstance(attributes, dict) and type(attributes) is dict and size == 2:
        return user_id, attributes
    if size == 1 or (size == 2 and "attributes" in user and attributes is None):
        return user_id, {}
    return "", {}


def plain_user(user: Any) -> dict[str, Any] | None:
    """``user_parts`` as a user: the user itself when it is already normal, a normal copy when it
    has no attributes, or ``None`` for "take the full branch"."""
    user_id, attributes = user_parts(user)
    if not user_id:
        return None
    if len(user) == 2 and user.get("attributes") is attributes:
        return user  # type: ignore[no-any-return]
    return {"id": user_id, "attributes": attributes}


def _is_storable_text(text: str) -> bool:
    return "\x00" not in text and is_utf8(text)


def read_path(attributes: Any, path: tuple[str, ...]) -> Any:
    """Walk a dotted attribute name (``org.plan``) into nested objects; ``None`` when absent."""
    value = attributes
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def bucket_string(value: Any) -> str | None:
    """The ``bucket_value`` of a ``bucket_by`` attribute: a string as-is, an integer in decimal.

    Anything else (missing, null, bool, float, list, object, a string that is not valid UTF-8)
    cannot be bucketed: a float has no spelling that every language agrees on.
    """
    if isinstance(value, str):
        return value if is_utf8(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def numeric(value: Any) -> int | float | None:
    """A number for ``lt``/``lte``/``gt``/``gte``/``between``: a JSON number or a numeric string."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is not str or len(value) > _MAX_NUMERIC_STRING_CHARS:
        return None
    if _INTEGER_STRING.fullmatch(value):
        return int(value)
    if _NUMERIC_STRING.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _numeric_identifier(text: str) -> int | None:
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        return None
    return int(text)


def semver_key(value: Any) -> SemverKey | None:
    """A key ordered by SemVer 2.0.0 precedence (spec item 11), or ``None`` if not a valid version.

    ``MAJOR.MINOR.PATCH[-pre.release][+build]``, no leading ``v`` and no leading zeros. Build
    metadata is ignored, a release sorts after its pre-releases, numeric identifiers sort below
    alphanumeric ones, and a longer pre-release list sorts after its own prefix.
    """
    if not isinstance(value, str) or len(value) > _MAX_SEMVER_CHARS or not value.isascii():
        return None
    version, plus, build = value.partition("+")
    if plus and not all(_SEMVER_IDENTIFIER.fullmatch(part) for part in build.split(".")):
        return None
    core, dash, prerelease = version.partition("-")
    numbers = [_numeric_identifier(part) for part in core.split(".")]
    if len(numbers) != 3:
        return None
    major, minor, patch = numbers
    if major is None or minor is None or patch is None:
        return None
    if not dash:
        return (major, minor, patch, 1, ())
    identifiers: list[tuple[int, int | str]] = []
    for part in prerelease.split("."):
        if not _SEMVER_IDENTIFIER.fullmatch(part):
            return None
        if part.isdigit():
            number = _numeric_identifier(part)
            if number is None:
                return None
            identifiers.append((0, number))
        else:
            identifiers.append((1, part))
    return (major, minor, patch, 0, tuple(identifiers))


def instant(value: Any) -> float | None:
    """Epoch seconds for ``before``/``after``: an ISO 8601 string (naive means UTC) or epoch
    seconds.

    Both forms become the correctly rounded double of the exact instant, so equal instants compare
    equal whichever form each side used.
    """
    if isinstance(value, str):
        if len(value) > _MAX_INSTANT_CHARS:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH).total_seconds()
    if is_number(value):
        try:
            seconds = float(value)
        except OverflowError:
            return None
        return seconds if math.isfinite(seconds) else None
    return None


def json_size(value: Any) -> int | None:
    """Bytes of ``value`` as compact UTF-8 JSON, or ``None`` if it is not JSON at all."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return len(text.encode("utf-8", "surrogatepass"))


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value, so that callers never share a compiled variant value."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value
