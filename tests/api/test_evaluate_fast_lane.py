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
        patched.setattr(fast_lane, "authorised_tenant", lambda *args: None)
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


# The lane against DRF over a matrix of headers: every cell must get DRF's status, body and headers.

ACCEPTS = [
    None,
    "",
    "application/json",
    "application/json; q=0",
    "application/json;q=0.5, text/html",
    "application/json; indent=4",
    "application/json; charset=utf-8",
    "application/json; version=2",
    "APPLICATION/JSON",
    "application/*",
    "application/*; q=0",
    "*/*",
    "*/*;q=0",
    "text/*",
    "text/html",
    "text/html, application/xhtml+xml, */*;q=0.8",
    "application/xml, application/json",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/vnd.api+json",
    "application/problem+json",
    "application/jsonx",
    "json",
    ",",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json;charset=utf8",
    "application/json; charset=latin-1",
    "application/json; foo=bar",
    "APPLICATION/JSON",
    "application/json-patch+json",
    "application/vnd.api+json",
    "text/plain",
    "application/json; " + " " * 300 + "charset=utf-8",
]
BODIES = {
    "answer": {"flag_key": "checkout", "user": {"id": "ü-1", "attributes": {"country": "NL"}}},
    "flag not found": {"flag_key": "nope", "user": {"id": "u"}},
    "invalid user": {"flag_key": "checkout", "user": {"id": 7}},
}
LANE_TAKES = [  # (Accept, Content-Type) cells the lane must answer itself: the common ones
    (None, "application/json"),
    ("application/json", "application/json"),
    ("*/*", "application/json; charset=utf-8"),
    ("application/json; indent=4", "application/json"),
    ("text/html, application/xhtml+xml, */*;q=0.8", "application/json"),
]


def _exchange(api: APIClient, path: str, raw: bytes, content_type: str, accept: str | None):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = api.generic("POST", path, raw, content_type=content_type, **headers)
    request_id = response["X-Request-ID"].encode()
    body = response.content.replace(request_id, b"<request id>")
    return response.status_code, body, _headers(response)


@pytest.fixture
def drf_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that reached the DRF view (the lane took every other one)."""
    calls: list[str] = []
    original = EvaluateView.dispatch

    def counted(self, request, *args, **kwargs):
        calls.append(request.META.get("HTTP_ACCEPT", "-"))
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(EvaluateView, "dispatch", counted)
    return calls


def _compare_cells(api, monkeypatch, cells) -> None:
    lane = [_exchange(api, *cell) for cell in cells]
    with monkeypatch.context() as patched:
        from tenancy.api import fast_lane

        patched.setattr(fast_lane, "authorised_tenant", lambda *args: None)
        drf = [_exchange(api, *cell) for cell in cells]
    mismatched = [  # (path, Content-Type, Accept, the lane's status, DRF's status)
        (cell[0], cell[2], cell[3], ours[0], theirs[0])
        for cell, ours, theirs in zip(cells, lane, drf, strict=True)
        if ours != theirs
    ]
    assert mismatched == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_fast_lane__every_accept_and_content_type__same_status_body_and_headers_as_drf(
    api, monkeypatch, content_type
):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    raw = json.dumps(BODIES["answer"]).encode()
    _compare_cells(api, monkeypatch, [("/v1/evaluate", raw, content_type, accept) for accept in ACCEPTS])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?other=1"])
def test_fast_lane__errors_and_format_queries__same_status_body_and_headers_as_drf(
    api, monkeypatch, body, query
):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    raw = json.dumps(BODIES[body]).encode()
    cells = [(f"/v1/evaluate{query}", raw, "application/json", accept) for accept in ACCEPTS]
    _compare_cells(api, monkeypatch, cells)
    bulk = json.dumps({"user": BODIES[body]["user"]}).encode()
    _compare_cells(api, monkeypatch, [(f"/v1/evaluate/bulk{query}", bulk, "application/json", None)])


@pytest.mark.django_db(transaction=True)
def test_fast_lane__json_patch_accept__406_like_drf(api, drf_calls):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    status, body, _ = _exchange(
        api,
        "/v1/evaluate",
        json.dumps(BODIES["answer"]).encode(),
        "application/json",
        "application/json-patch+json",
    )
    assert (status, json.loads(body)["error"]["code"]) == (406, "not_acceptable")


@pytest.mark.django_db(transaction=True)
def test_fast_lane__common_requests__answered_without_drf(api, drf_calls):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    raw = json.dumps(BODIES["answer"]).encode()
    for accept, content_type in LANE_TAKES:
        status, _, _ = _exchange(api, "/v1/evaluate", raw, content_type, accept)
        assert status == 200
    assert drf_calls == []


class _RefuseEveryone:
    def allow_request(self, request, view) -> bool:
        return False

    def wait(self) -> float:
        return 7.0


class _DenyEveryone:
    message = "Nobody today."

    def has_permission(self, request, view) -> bool:
        return False

    def has_object_permission(self, request, view, obj) -> bool:
        return False


@pytest.mark.django_db(transaction=True)
def test_fast_lane__throttle_added_to_the_view__drf_answers_429(api, monkeypatch, drf_calls):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    monkeypatch.setattr(EvaluateView, "throttle_classes", [_RefuseEveryone])
    response = api.post("/v1/evaluate", BODIES["answer"], format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (429, "rate_limited")
    assert len(drf_calls) == 1


@pytest.mark.django_db(transaction=True)
def test_fast_lane__permission_added_to_the_view__drf_answers_403(api, monkeypatch, drf_calls):
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    monkeypatch.setattr(EvaluateView, "permission_classes", [*EvaluateView.permission_classes, _DenyEveryone])
    response = api.post("/v1/evaluate", BODIES["answer"], format="json")
    assert response.status_code == 403
    assert len(drf_calls) == 1


@pytest.mark.django_db(transaction=True)
def test_fast_lane__throttle_in_settings__drf_answers_429(api, monkeypatch, drf_calls):
    """A throttle configured for every view reaches this one through its class attribute."""
    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    monkeypatch.setattr(EvaluateBulkView, "throttle_classes", [_RefuseEveryone])
    response = api.post("/v1/evaluate/bulk", {"user": {"id": "u"}}, format="json")
    assert response.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_fast_lane__view_overriding_a_dispatch_step__gets_no_lane(api):
    from django.test import RequestFactory

    from tenancy.api.fast_lane import fast_lane

    assert api.post("/v1/flags", ROLLOUT, format="json").status_code == 201
    initial_calls: list[str] = []

    class Audited(EvaluateView):
        def initial(self, request, *args, **kwargs):
            initial_calls.append(request.method)
            super().initial(request, *args, **kwargs)

    request = RequestFactory().post(
        "/v1/evaluate", json.dumps(BODIES["answer"]), content_type="application/json", **api._credentials
    )
    response = fast_lane(Audited)(request)
    response.render()
    assert (response.status_code, initial_calls) == (200, ["POST"])
