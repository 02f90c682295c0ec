"""Rate limiting (api.md: 429 `rate_limited` with Retry-After): writes per API client, never evaluation;
tokens per client address, which a client cannot choose by sending `X-Forwarded-For`."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tenancy.api.helpers import WriteRateThrottle
from tenancy.api.throttles import TokenRateThrottle

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


TOKENS_PER_MINUTE = 3
BAD_CREDENTIALS = {"client_id": "nobody", "client_secret": "wrong"}


@pytest.fixture
def low_token_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TokenRateThrottle, "rate", f"{TOKENS_PER_MINUTE}/min", raising=False)


def _token_attempt(client: APIClient, forwarded_for: str, peer: str = "127.0.0.1") -> int:
    response = client.post(
        "/v1/auth/token", BAD_CREDENTIALS, format="json", HTTP_X_FORWARDED_FOR=forwarded_for, REMOTE_ADDR=peer
    )
    return response.status_code


def test_token_limit__rotating_x_forwarded_for_from_an_untrusted_peer__is_still_limited(low_token_rate):
    client = APIClient()
    statuses = [_token_attempt(client, f"203.0.113.{n}") for n in range(TOKENS_PER_MINUTE + 2)]

    assert statuses == [401] * TOKENS_PER_MINUTE + [429, 429]


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_token_limit__behind_a_trusted_proxy__counts_the_rightmost_untrusted_address(low_token_rate):
    client = APIClient()
    for n in range(TOKENS_PER_MINUTE):
        # The client wrote the left part itself: a spoofed address it rotates, then what our proxy saw.
        assert _token_attempt(client, f"198.51.100.{n}, 203.0.113.7, 10.1.1.1", peer="10.0.0.2") == 401

    assert _token_attempt(client, "198.51.100.99, 203.0.113.7", peer="10.0.0.2") == 429
    assert _token_attempt(client, "203.0.113.8", peer="10.0.0.2") == 401, "another client behind the proxy"


def test_token_limit__over_the_rate__429_with_retry_after_within_the_window(low_token_rate):
    client = APIClient()
    for _ in range(TOKENS_PER_MINUTE):
        _token_attempt(client, "")
    response = client.post("/v1/auth/token", BAD_CREDENTIALS, format="json")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 0 < int(response["Retry-After"]) <= 60
