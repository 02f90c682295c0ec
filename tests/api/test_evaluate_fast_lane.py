"""The evaluation routes answer their happy path without DRF (`tenancy.api.fast_lane`).

What must hold: the answer is the one the DRF view gives for the same request, the happy path
really skips DRF, and every request the lane does not take still gets the DRF view's error.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from evaluation.api.views import EvaluateBulkView, EvaluateView

ROLLOUT = {
    "key": "checkout",
    "type": "json",
    "state": "on",
    "off_variant": "off",
    "variants": [
        {"key": "on", "value": {"color": "blü"}, "weight": 50},
        {"key": "off", "value": {"color": "grey"}, "weight": 50},
    ],
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
}
USERS = [
    {"id": "u-1", "attributes": {"country": "NL"}},
    {"id": "u-2"},
    {"id": "ünïcode-3", "attributes": {"country": "DE", "plan": "pro"}},
]


def _through_drf(api: APIClient, monkeypatch: pytest.MonkeyPatch, path: str, body: dict) -> tuple[int, dict]:
    """The same request with the lane closed: the DRF view answers it."""
    response = _drf_response(api, monkeypatch, path, body)
    return response.status_code, response.json()


def _drf_response(api: APIClient, monkeypatch: pytest.MonkeyPatch, path: str, body: dict):
    from tenancy.api import fast_lane

    with monkeypatch.context() as patched:
        patched.setattr(fast_lane, "authorised_tenant", lambda request, scope: None)
        return api.post(path, body, format="json")


def _headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "X-Request-ID"}


def _refuse_drf(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, request, *args, **kwargs):
        raise AssertionError("the happy path went through DRF")

    monkeypatch.setattr(EvaluateView, "dispatch", refuse)
    monkeypatch.setattr(EvaluateBulkView, "dispatch", refuse)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("user", USERS)
def test_evaluate__fast_lane_answers_exactly_what_the_drf_view_answers(api, monkeypatch, user):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    body = {"flag_key": "checkout", "user": user}
    expected = _through_drf(api, monkeypatch, "/v1/evaluate", body)
    assert expected[0] == 200 and expected[1]["flag_key"] == "checkout"
    _refuse_drf(monkeypatch)
    response = api.post("/v1/evaluate", body, format="json")
    assert (response.status_code, response.json()) == expected
    assert response["Content-Type"] == "application/json"
    monkeypatch.undo()
    assert _headers(response) == _headers(_drf_response(api, monkeypatch, "/v1/evaluate", body))
    assert json.loads(response.content.decode("utf-8")) == expected[1]


@pytest.mark.django_db(transaction=True)
def test_bulk__fast_lane_answers_exactly_what_the_drf_view_answers(api, monkeypatch):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    assert (
        api.post("/v1/flags", {**ROLLOUT, "key": "other", "state": "off"}, format="json").status_code == 201
    )
    for body in ({"user": USERS[0]}, {"user": USERS[2], "flag_keys": ["other", "missing", "checkout"]}):
        expected = _through_drf(api, monkeypatch, "/v1/evaluate/bulk", body)
        assert expected[0] == 200 and "checkout" in expected[1]["flags"]
        with monkeypatch.context() as patched:
            _refuse_drf(patched)
            response = api.post("/v1/evaluate/bulk", body, format="json")
        assert (response.status_code, response.json()) == expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("accept", ["application/json", "*/*", "text/html, application/xhtml+xml, */*;q=0.8"])
def test_evaluate__fast_lane_serves_every_accept_header_drf_would_answer_in_json(api, monkeypatch, accept):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    _refuse_drf(monkeypatch)
    response = api.post(
        "/v1/evaluate", {"flag_key": "checkout", "user": USERS[0]}, format="json", HTTP_ACCEPT=accept
    )
    assert response.status_code == 200 and response.json()["reason"] == "RULE_MATCH"


@pytest.mark.django_db(transaction=True)
def test_evaluate__errors_raised_inside_the_lane_keep_the_error_shape(api, monkeypatch):
    _refuse_drf(monkeypatch)
    missing = api.post("/v1/evaluate", {"flag_key": "nope", "user": {"id": "u"}}, format="json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "flag_not_found"
    assert missing.json()["request_id"] == missing["X-Request-ID"]
    invalid = api.post("/v1/evaluate", {"flag_key": "nope", "user": {"id": 7}}, format="json")
    assert invalid.status_code == 422
    fields = invalid.json()["error"]["details"]["fields"]
    assert list(fields) == ["user.id"] and fields["user.id"]
    assert invalid["Allow"] == "POST, OPTIONS"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("content_type", "raw", "status", "code"),
    [
        ("application/json", b"{not json", 400, "malformed_request"),
        ("application/json", b'{"flag_key": NaN}', 400, "malformed_request"),
        ("application/json", b"[1, 2]", 422, "validation_error"),
        ("text/plain", b'{"flag_key": "checkout", "user": {"id": "u"}}', 415, "unsupported_media_type"),
        ("application/json", b"\xff\xfe", 400, "malformed_request"),
    ],
)
def test_evaluate__bodies_the_lane_refuses_get_the_drf_error(api, content_type, raw, status, code):
    api.post("/v1/flags", ROLLOUT, format="json")
    response = api.generic("POST", "/v1/evaluate", raw, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db(transaction=True)
def test_evaluate__callers_the_lane_refuses_get_the_drf_error(api, make_api, tenant, other_tenant):
    api.post("/v1/flags", ROLLOUT, format="json")
    body = {"flag_key": "checkout", "user": {"id": "u"}}
    anonymous = APIClient().post("/v1/evaluate", body, format="json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    no_scope = make_api(tenant, scopes=["flags:read"]).post("/v1/evaluate", body, format="json")
    assert (no_scope.status_code, no_scope.json()["error"]["code"]) == (403, "insufficient_scope")
    wrong_tenant = make_api(tenant, tenant_header=other_tenant.slug).post("/v1/evaluate", body, format="json")
    assert (wrong_tenant.status_code, wrong_tenant.json()["error"]["code"]) == (403, "tenant_mismatch")
    no_header = make_api(tenant, tenant_header="").post("/v1/evaluate", body, format="json")
    assert (no_header.status_code, no_header.json()["error"]["code"]) == (400, "malformed_request")
    html_only = api.post("/v1/evaluate", body, format="json", HTTP_ACCEPT="text/html")
    assert (html_only.status_code, html_only.json()["error"]["code"]) == (406, "not_acceptable")
    get = api.get("/v1/evaluate")
    assert (get.status_code, get.json()["error"]["code"]) == (405, "method_not_allowed")
