"""Hostile input on the routes issues 12, 14 and 15 added (usage reports, OFREP, rollouts, kill
switches, automation): each request below is refused with a 4xx in its route's error shape, never a
500, and a refused write leaves nothing behind."""

from __future__ import annotations

import pytest

from tenancy.models import Tenant
from tests.api.test_hostile_input import assert_error, nested_array, send, snapshot
from tests.api.test_hostile_input import seeded as seeded
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_kill_category(seeded: Tenant) -> Tenant:
    """A flag in the category the kill switch routes name, so a refusal is the body's doing."""
    make_flag(seeded, "payments-v2", kill_category="payments", state="on")
    return seeded


BIG_LIST = (
    "["
    + ",".join(['{"flag_key": "checkout", "variant": "on", "reason": "FALLTHROUGH", "n": 1}'] * 6_000)
    + "]"
)

# (method, path, body template): {} is where the hostile part goes.
OUR_ROUTES = [
    ("POST", "/v1/usage", '{{"batch_id": "b-1", "counts": {}}}'),
    ("POST", "/v1/flags/checkout/rollouts", '{{"target": "default", "variant": "on", "steps": {}}}'),
    ("POST", "/v1/killswitch/payments", '{{"reason": {}}}'),
    ("PUT", "/v1/automation", '{{"paused": {}}}'),
]
HOSTILE_PARTS = {
    "deep": nested_array(10_000),
    "huge_number": "1e999",
    "lone_surrogate": '"\\ud800"',
    "nul": '"a\\u0000b"',
    "6000_entries": BIG_LIST,
}


@pytest.mark.parametrize(("method", "path", "template"), OUR_ROUTES)
@pytest.mark.parametrize("part", sorted(HOSTILE_PARTS))
def test_newer_route__hostile_body__one_error_shape_and_nothing_written(
    api, with_kill_category, method, path, template, part
):
    seeded = with_kill_category
    before = snapshot(seeded)

    response = send(api, method, path, template.format(HOSTILE_PARTS[part]), HTTP_X_CHANGE_REASON="fuzz")

    assert 400 <= response.status_code < 500, response.content[:300]
    code = "malformed_request" if response.status_code == 400 else "validation_error"
    assert_error(response, response.status_code, code)
    assert snapshot(seeded) == before


@pytest.mark.parametrize(("method", "path", "template"), OUR_ROUTES)
def test_newer_route__whole_body_nested_10000_levels__422(api, with_kill_category, method, path, template):
    seeded = with_kill_category
    before = snapshot(seeded)

    response = send(api, method, path, nested_array(10_000), HTTP_X_CHANGE_REASON="fuzz")

    assert_error(response, 422, "validation_error")
    assert snapshot(seeded) == before


OFREP_ROUTES = ["/ofrep/v1/evaluate/flags/checkout", "/ofrep/v1/evaluate/flags"]


@pytest.mark.parametrize("path", OFREP_ROUTES)
@pytest.mark.parametrize("part", sorted(set(HOSTILE_PARTS) - {"6000_entries"}))  # a long list is a value
def test_ofrep__hostile_context__400_in_ofreps_shape(api, seeded, path, part):
    raw = f'{{"context": {{"targetingKey": "u-1", "plan": {HOSTILE_PARTS[part]}}}}}'

    response = send(api, "POST", path, raw)

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["errorCode"] in {"PARSE_ERROR", "INVALID_CONTEXT"}, body
    assert isinstance(body.get("errorDetails"), str) and body["errorDetails"]


@pytest.mark.parametrize("path", OFREP_ROUTES)
def test_ofrep__body_not_json__400_parse_error(api, seeded, path):
    response = send(api, "POST", path, b"\xff\xfe{not json")

    assert response.status_code == 400
    assert response.json()["errorCode"] == "PARSE_ERROR"


def test_killswitch__reason_in_the_body__422_pointing_at_the_header(api, with_kill_category):
    before = snapshot(with_kill_category)

    response = send(api, "POST", "/v1/killswitch/payments", '{"reason": "fire"}', HTTP_X_CHANGE_REASON="fire")

    error = assert_error(response, 422, "validation_error", "body")
    assert "X-Change-Reason" in error["details"]["fields"]["body"][0]
    assert snapshot(with_kill_category) == before


def test_killswitch__empty_object_body__engages(api, with_kill_category):
    response = send(api, "POST", "/v1/killswitch/payments", "{}", HTTP_X_CHANGE_REASON="fire")

    assert response.status_code == 201, response.content
    assert response.json()["flags"] == ["payments-v2"]
