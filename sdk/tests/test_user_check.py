"""``validate_user`` is one check with two branches: the quick one (``values.plain_user``, which
every SDK call runs) must answer exactly as the full one (``check_user_in_full``) wherever it
answers.

Random user-shaped values (dicts and mappings, every key and id type, lone surrogates, ids at and
over the length cap, extra fields, ``attributes`` of every kind): the quick branch answers ``None``
(take the full branch) or the very user the full branch would return, and it never lets through a
user the full branch refuses.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flagsvc_sdk.engine import ValidationFailed, validate_user
from flagsvc_sdk.engine.limits import MAX_USER_ID_CHARS
from flagsvc_sdk.engine.validation import check_user_in_full
from flagsvc_sdk.engine.values import plain_user, user_parts

_TEXT = st.text(alphabet=st.characters(codec=None), max_size=8) | st.sampled_from(
    ["u-1", "ü-2", "u-\ud800", "", "x" * MAX_USER_ID_CHARS, "x" * (MAX_USER_ID_CHARS + 1)]
)
_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_KEY = _TEXT | st.integers() | st.none() | st.booleans()
_ATTRIBUTES = (
    st.dictionaries(_TEXT, _SCALAR, max_size=4)
    | st.dictionaries(_KEY, _SCALAR, max_size=3)
    | st.dictionaries(_TEXT, _SCALAR, max_size=3).map(OrderedDict)
    | _SCALAR
    | st.lists(_SCALAR, max_size=2)
)


@st.composite
def _users(draw: st.DrawFn) -> Any:
    user: dict[Any, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        user["id"] = draw(_TEXT | _SCALAR)
    if draw(st.booleans()):
        user["attributes"] = draw(_ATTRIBUTES)
    for name in draw(st.lists(st.sampled_from(["traits", "key", 1, None]), max_size=1)):
        user[name] = draw(_SCALAR)
    kind = draw(st.sampled_from(["dict", "dict", "dict", "ordered"]))
    return user if kind == "dict" else OrderedDict(user)


def _full(user: Any) -> dict[str, Any] | None:
    try:
        return check_user_in_full(user)
    except ValidationFailed:
        return None


@settings(max_examples=1500)
@given(_users() | _SCALAR)
def test_user_check__quick_branch_answers_as_the_full_branch(user: Any) -> None:
    quick = plain_user(user)
    full = _full(user)
    user_id, attributes = user_parts(user)  # what the SDK's typed calls read
    assert (user_id != "") == (quick is not None)
    if quick is not None:
        assert full is not None, "the quick branch let through a user the full branch refuses"
        assert quick == full
        assert (user_id, attributes) == (full["id"], full["attributes"])
        assert type(quick) is dict
        assert type(quick["attributes"]) is dict
    # validate_user is the two branches: it answers what the full branch answers, or refuses.
    if full is None:
        try:
            validate_user(user)
        except ValidationFailed:
            pass
        else:
            raise AssertionError("validate_user accepted a user the full branch refuses")
    else:
        assert validate_user(user) == full


def test_user_check__the_common_shape_takes_the_quick_branch() -> None:
    """The shape callers use (a string id, a few scalar attributes) never pays for the full branch:
    the quick branch answers with the user itself."""
    user = {"id": "user-1", "attributes": {"country": "NL", "age": 35, "plan": "pro", "beta": True}}
    assert plain_user(user) is user
    assert plain_user({"id": "ü-1", "attributes": {}}) is not None
    assert plain_user({"id": "u-1"}) == {"id": "u-1", "attributes": {}}
