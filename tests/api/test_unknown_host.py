"""A request whose `Host` is not in `ALLOWED_HOSTS`: Django refuses it, and under `/v1` in JSON."""

from __future__ import annotations


def test_v1__host_not_allowed__400_in_the_error_shape(api):
    response = api.get("/v1/flags", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == "malformed_request"
    assert body["request_id"]


def test_admin__host_not_allowed__django_page_not_json(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "application/json" not in response["Content-Type"]
