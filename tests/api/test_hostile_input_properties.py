"""Random hostile JSON at the write and evaluation routes: never a 500, always the one error shape.

Bodies mix realistic fields with deep nesting, every kind of Unicode (NUL and lone surrogates
included), integers of hundreds of digits, non-finite floats and bytes that are not UTF-8.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.json_input import nesting_depth
from tests.api.test_hostile_input import json_depth, seeded, send  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.django_db

ROUTES = [
    ("POST", "/v1/flags"),
    ("PATCH", "/v1/flags/checkout"),
    ("POST", "/v1/segments"),
    ("POST", "/v1/evaluate"),
    ("POST", "/v1/evaluate/bulk"),
    ("POST", "/v1/evaluate/preview"),
    ("POST", "/v1/auth/token"),
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53), 10**30])
    | st.floats()  # infinities and NaN included: written as JSON's missing Infinity/NaN or as 1e999
    | st.text()  # NUL and lone surrogates included
    | st.sampled_from(["NL", "on", "off", "checkout", "beta", "u-1", "\x00", "\ud800", "a\udfffb"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "key",
        "name",
        "state",
        "type",
        "variants",
        "rules",
        "default",
        "targets",
        "tags",
        "off_variant",
        "flag_key",
        "flag_keys",
        "user",
        "users",
        "flag",
        "client_id",
        "client_secret",
        "version",
        "when",
        "included",
    ]
)
bodies = st.dictionaries(field_names, values, max_size=6) | values


@st.composite
def hostile_texts(draw: st.DrawFn) -> bytes:
    body = draw(bodies)
    depth = draw(st.sampled_from([0, 0, 0, 3, 63, 64, 65, 200, 5_000, 20_000]))
    text = json.dumps(body, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if draw(st.booleans()):
        text = text.replace("Infinity", "1e999").replace("NaN", "-1e999")
    if depth:
        opener, closer = draw(
            st.sampled_from([("[", "]"), ('{"user": ', "}"), ('{"rules": [{"when": ', "}]}")])
        )
        text = opener * depth + text + closer * depth
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=4)) + raw[cut:]
    return raw


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(raw=hostile_texts())
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_random_hostile_json__never_a_500_and_always_the_error_shape(api, seeded, method, path, raw):  # noqa: F811
    response = send(api, method, path, raw)
    assert response.status_code < 500, (response.status_code, response.content[:300], raw[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"error", "request_id"}
        assert set(body["error"]) == {"code", "message", "details"}


bracket_texts = st.text(alphabet='[]{}"\\ab', max_size=8)
bracketed_values = st.recursive(
    st.none() | st.integers() | bracket_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(bracket_texts, inner, max_size=3),
    max_leaves=30,
)


@given(value=bracketed_values, ensure_ascii=st.booleans())
def test_nesting_depth__counted_on_the_text__equals_the_parsed_depth(value, ensure_ascii):
    """The depth is measured before parsing; brackets, quotes and backslashes inside strings do not count."""
    assert nesting_depth(json.dumps(value, ensure_ascii=ensure_ascii)) == json_depth(value)
