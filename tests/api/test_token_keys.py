"""Rotating `JWT_SECRET` (tenancy.token_keys): tokens name their key (`kid`); earlier keys listed in
`JWT_PREVIOUS_SECRETS` still verify but never sign; a key no longer held, or a `kid` that names none,
is a 401, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tenancy.authentication import forget_verified_tokens
from tenancy.token_keys import key_id
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

OLD = "the-old-jwt-secret-of-at-least-32-bytes-long"
NEW = "the-new-jwt-secret-of-at-least-32-bytes-long"


@pytest.fixture(autouse=True)
def _fresh_verifications():
    forget_verified_tokens()  # each case verifies its tokens itself, not from an earlier case's memory
    yield
    forget_verified_tokens()


def status(token: str, tenant: str = "acme") -> int:
    return (
        APIClient()
        .get("/v1/flags", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID=tenant)
        .status_code
    )


def test_a_token__names_the_key_that_signed_it_and_not_the_key(tenant):
    _, token = token_for(tenant)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == key_id(settings.JWT_SECRET)
    assert header["alg"] == "HS256"
    assert settings.JWT_SECRET not in header["kid"]
    assert key_id(OLD) != key_id(NEW)
    assert status(token) == 200


def test_rotation__tokens_of_the_previous_key_still_work_and_new_ones_use_the_new_key(tenant, settings):
    settings.JWT_SECRET, settings.JWT_PREVIOUS_SECRETS = OLD, []
    _, old_token = token_for(tenant)

    settings.JWT_SECRET, settings.JWT_PREVIOUS_SECRETS = NEW, [OLD]
    assert status(old_token) == 200
    _, new_token = token_for(tenant)
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(NEW)
    jwt.decode(new_token, NEW, algorithms=["HS256"])  # signed with the new key, not the old one
    assert status(new_token) == 200

    forget_verified_tokens()  # a restart with the old key dropped
    settings.JWT_PREVIOUS_SECRETS = []
    assert status(old_token) == 401
    assert status(new_token) == 200


def test_a_token_without_kid__from_before_key_ids__checked_against_every_key_held(tenant, settings):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    legacy = jwt.encode(claims, OLD, algorithm="HS256")  # no kid in its header
    assert "kid" not in jwt.get_unverified_header(legacy)

    settings.JWT_SECRET, settings.JWT_PREVIOUS_SECRETS = NEW, [OLD]
    assert status(legacy) == 200
    forget_verified_tokens()
    settings.JWT_PREVIOUS_SECRETS = []
    assert status(legacy) == 401


def signed(header: dict[str, Any] | bytes, claims: dict[str, Any], secret: str) -> str:
    """A token made by hand (PyJWT refuses to write a `kid` that is not a string); a `bytes` header
    is sent as it is."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    raw_header = header if isinstance(header, bytes) else json.dumps(header).encode()
    signing_input = f"{part(raw_header)}.{part(json.dumps(claims).encode())}"
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(digest)}"


@pytest.mark.parametrize(
    "kid",
    ["hs256-0000000000000000", "", ["a"], {"k": 1}, 7, None, "\ud800", "hs256-\x00", 1e308, "k" * 2000],
    ids=[
        "unknown",
        "empty",
        "list",
        "object",
        "number",
        "null",
        "lone-surrogate",
        "nul",
        "huge-number",
        "long",
    ],
)
def test_a_kid_that_names_no_key_held__401_with_the_error_shape(tenant, kid: Any):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    good = signed({"alg": "HS256", "typ": "JWT"}, claims, settings.JWT_SECRET)
    assert status(good) == 200  # the hand-made token is right but for the kid below
    forget_verified_tokens()

    forged = signed({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, settings.JWT_SECRET)
    response = APIClient().get("/v1/flags", HTTP_AUTHORIZATION=f"Bearer {forged}", HTTP_X_TENANT_ID="acme")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_the_right_kid_on_a_wrong_signature__401(tenant):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"]) | {"scope": "admin"}
    forged = jwt.encode(claims, OLD, algorithm="HS256", headers={"kid": key_id(settings.JWT_SECRET)})
    assert status(forged) == 401


def test_an_expired_token_of_a_previous_key__401(tenant, settings):
    settings.JWT_SECRET, settings.JWT_PREVIOUS_SECRETS = OLD, []
    _, token = token_for(tenant)
    claims = jwt.decode(token, OLD, algorithms=["HS256"]) | {"exp": int(time.time()) - 5}
    expired = jwt.encode(claims, OLD, algorithm="HS256", headers={"kid": key_id(OLD)})
    settings.JWT_SECRET, settings.JWT_PREVIOUS_SECRETS = NEW, [OLD]
    assert status(expired) == 401


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg": "HS256", "kid": ' + b"[" * 1400 + b"]" * 1400 + b"}",
        b'{"alg": "HS256", "kid": 1e999}',
        b'{"alg": "HS256", "kid": "\xff\xfe"}',
        rb'{"alg": "HS256", "kid": "a\u0000"}',
        b"[1, 2]",
        b"",
    ],
    ids=["nested-1400", "1e999", "not-utf8", "nul-escape", "not-an-object", "empty"],
)
def test_a_hostile_header__401_never_500(tenant, header: bytes):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    response = APIClient().get(
        "/v1/flags",
        HTTP_AUTHORIZATION=f"Bearer {signed(header, claims, settings.JWT_SECRET)}",
        HTTP_X_TENANT_ID="acme",
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
