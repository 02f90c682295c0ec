"""Rate limiting (api.md: 429 `rate_limited` with Retry-After): writes per API client, never evaluation."""

from __future__ import annotations

import pytest

from tenancy.api.helpers import WriteRateThrottle

pytestmark = pytest.mark.django_db

WRITES_PER_MINUTE = 3


@pytest.fixture
def low_write_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WriteRateThrottle, "rate", f"{WRITES_PER_MINUTE}/min", raising=False)


def test_writes_over_the_rate__429_rate_limited_with_retry_after(api, low_write_rate):
    for index in range(WRITES_PER_MINUTE):
        assert api.post("/v1/flags", {"key": f"f-{index}"}, format="json").status_code == 201

    response = api.post("/v1/flags", {"key": "one-too-many"}, format="json")

    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["request_id"] == response["X-Request-ID"]
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["error"]["details"]["retry_after"] == retry_after
    assert api.get("/v1/flags/one-too-many").status_code == 404, "the refused write stored nothing"


def test_write_limit__is_shared_by_every_write_route_of_one_client(api, low_write_rate):
    api.post("/v1/flags", {"key": "a"}, format="json")
    api.patch("/v1/flags/a", {"state": "on"}, format="json")
    api.post("/v1/segments", {"key": "s"}, format="json")
    assert api.patch("/v1/segments/s", {"description": "x"}, format="json").status_code == 429
    assert api.delete("/v1/flags/a").status_code == 429


def test_write_limit__evaluation_and_reads_of_the_same_client_are_never_throttled(api, low_write_rate):
    api.post("/v1/flags", {"key": "hot", "state": "on"}, format="json")
    for index in range(WRITES_PER_MINUTE):
        api.post("/v1/flags", {"key": f"f-{index}"}, format="json")
    assert api.post("/v1/flags", {"key": "blocked"}, format="json").status_code == 429

    user = {"id": "u-1"}
    for _ in range(WRITES_PER_MINUTE * 10):
        assert api.post("/v1/evaluate", {"flag_key": "hot", "user": user}, format="json").status_code == 200
        assert api.post("/v1/evaluate/bulk", {"user": user}, format="json").status_code == 200
        assert (
            api.post("/v1/evaluate/preview", {"flag_key": "hot", "user": user}, format="json").status_code
            == 200
        )
        assert api.get("/v1/flags").status_code == 200
        assert api.get("/v1/flags/hot").status_code == 200
        assert api.get("/v1/audit").status_code == 200


def test_write_limit__is_per_api_client(make_api, tenant, low_write_rate):
    busy, other = make_api(tenant), make_api(tenant)
    for index in range(WRITES_PER_MINUTE):
        busy.post("/v1/flags", {"key": f"busy-{index}"}, format="json")
    assert busy.post("/v1/flags", {"key": "busy-x"}, format="json").status_code == 429
    assert other.post("/v1/flags", {"key": "other"}, format="json").status_code == 201
