"""POST /v1/auth/token and the 400/401/403 rows of api.md's error table."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Tenant
from tenancy.selectors import clear_caches
from tenancy.services import api_client_create, api_client_revoke, tenant_set_active
from tests.conftest import token_for

pytestmark = pytest.mark.django_db


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(tenant: str = "acme", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "c",
        "tenant": tenant,
        "scope": "flags:read",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
        "token_type": "access",
        **extra,
    }


def _get(token: str | None, tenant: str | None = "acme") -> Any:
    client = APIClient()
    headers: dict[str, str] = {}
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if tenant is not None:
        headers["HTTP_X_TENANT_ID"] = tenant
    return client.get("/v1/flags", **headers)


def test_token__valid_credentials__returns_bearer_jwt_with_claims(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read", "evaluate"])
    response = APIClient().post(
        "/v1/auth/token",
        {"client_id": issued.client.client_id, "client_secret": issued.client_secret},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "flags:read evaluate"
    claims = jwt.decode(body["access_token"], settings.JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == issued.client.client_id
    assert claims["tenant"] == "acme"
    assert claims["scope"] == "flags:read evaluate"
    assert {"iat", "exp", "jti"} <= set(claims)
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


def test_token__bad_secret__401_without_saying_which_part(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    response = APIClient().post(
        "/v1/auth/token", {"client_id": issued.client.client_id, "client_secret": "wrong"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"] == {**response.json()["error"], "code": "unauthenticated"}
    assert "secret" in response.json()["error"]["message"] and "client" in response.json()["error"]["message"]


def test_token__empty_secret__422_naming_the_field(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    response = APIClient().post(
        "/v1/auth/token", {"client_id": issued.client.client_id, "client_secret": ""}, format="json"
    )
    assert response.status_code == 422
    assert "client_secret" in response.json()["error"]["details"]["fields"]


def test_token__unknown_client__401(db):
    response = APIClient().post(
        "/v1/auth/token", {"client_id": "nobody", "client_secret": "x"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_token__secret_is_stored_only_as_a_hash(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    issued.client.refresh_from_db()
    assert issued.client_secret not in issued.client.secret_hash
    assert len(issued.client.secret_hash) == 64


def test_token__body_not_json__400_malformed(db):
    response = APIClient().post("/v1/auth/token", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_request__no_token__401_with_www_authenticate(tenant):
    response = _get(None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "bearer-x"])
def test_request__malformed_authorization__401(tenant, header):
    response = APIClient().get("/v1/flags", HTTP_AUTHORIZATION=header, HTTP_X_TENANT_ID="acme")
    assert response.status_code == 401


def test_request__garbage_token__401(tenant):
    assert _get("not.a.jwt").status_code == 401


def test_request__bad_signature__401(tenant):
    token = jwt.encode(_claims(), "another-secret", algorithm="HS256")
    assert _get(token).status_code == 401


def test_request__alg_none__401(tenant):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    response = _get(token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_request__hs512_with_right_secret__401(tenant):
    token = jwt.encode(_claims(), settings.JWT_SECRET, algorithm="HS512")
    assert _get(token).status_code == 401


def test_request__expired_token__401(tenant):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    claims["exp"] = int(time.time()) - 5
    expired = jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")
    assert _get(expired).status_code == 401


def test_request__token_without_exp__401(tenant):
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    del claims["exp"]
    assert _get(jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")).status_code == 401


def test_request__missing_tenant_header__400(tenant):
    _, token = token_for(tenant)
    response = _get(token, tenant=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_request__tenant_header_differs_from_token__403_tenant_mismatch(tenant, other_tenant):
    _, token = token_for(tenant)
    response = _get(token, tenant=other_tenant.slug)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"


def test_request__disabled_tenant__403_tenant_mismatch(tenant):
    _, token = token_for(tenant)
    tenant_set_active(tenant=tenant, active=False)
    response = _get(token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"


def test_request__revoked_client__401(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    token = (
        APIClient()
        .post(
            "/v1/auth/token",
            {"client_id": issued.client.client_id, "client_secret": issued.client_secret},
            format="json",
        )
        .json()["access_token"]
    )
    assert _get(token).status_code == 200
    api_client_revoke(client=issued.client)
    assert _get(token).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "scope_granted"),
    [
        ("get", "/v1/flags", "segments:read"),
        ("post", "/v1/flags", "flags:read"),
        ("get", "/v1/segments", "flags:read"),
        ("post", "/v1/segments", "segments:read"),
        ("post", "/v1/evaluate", "flags:read"),
        ("post", "/v1/evaluate/preview", "evaluate"),
        ("get", "/v1/audit", "flags:write"),
    ],
)
def test_request__missing_scope__403_insufficient_scope(tenant, method, path, scope_granted):
    _, token = token_for(tenant, [scope_granted])
    client = APIClient()
    response = getattr(client, method)(
        path, {}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID="acme"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_request__write_scope_also_grants_read(tenant):
    _, token = token_for(tenant, ["flags:write"])
    assert _get(token).status_code == 200


def test_request__a_remembered_token_still_expires(tenant):
    """Verified tokens are remembered for speed, never beyond their exp."""
    _, token = token_for(tenant)
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    claims["exp"] = int(time.time()) + 2
    short = jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")
    assert _get(short).status_code == 200
    time.sleep(2.1)
    assert _get(short).status_code == 401


def test_request__a_token_altered_after_a_good_one__is_verified_again(tenant):
    _, token = token_for(tenant)
    assert _get(token).status_code == 200
    header, _payload, signature = token.split(".")
    forged_claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"]) | {
        "scope": "admin flags:write"
    }
    forged_payload = jwt.encode(
        forged_claims, "wrong-secret-of-enough-length-for-hs256!!", algorithm="HS256"
    ).split(".")[1]
    assert _get(f"{header}.{forged_payload}.{signature}").status_code == 401


def test_request__tenant_and_client_not_seen_lately__checked_in_one_query(tenant):
    """Both answers expire together; a process serving 1,000 tenants meets this on most requests."""
    _, token = token_for(tenant)
    clear_caches()

    with CaptureQueriesContext(connection) as queries:
        assert _get(token).status_code == 200

    by_slug = [q["sql"] for q in queries.captured_queries if '"tenancy_tenant"."slug"' in q["sql"]]
    assert len(by_slug) == 1
    assert "tenancy_apiclient" in by_slug[0], "the client's check rides on the tenant's read"


def test_request__tenant_disabled_after_its_client_was_checked__403_once_the_answers_expire(tenant, settings):
    _, token = token_for(tenant)
    assert _get(token).status_code == 200
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)  # behind the services' back: no signal
    clear_caches()

    response = _get(token)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"


def test_client_check__only_this_tenants_active_client_counts(tenant, other_tenant):
    from tenancy.selectors import api_client_is_active

    mine = api_client_create(tenant=tenant, scopes=["flags:read"]).client
    theirs = api_client_create(tenant=other_tenant, scopes=["flags:read"]).client
    revoked = api_client_create(tenant=tenant, scopes=["flags:read"]).client
    api_client_revoke(client=revoked)
    clear_caches()

    assert api_client_is_active(mine.client_id, tenant.slug) is True
    assert api_client_is_active(theirs.client_id, tenant.slug) is False, "another tenant's client"
    assert api_client_is_active(revoked.client_id, tenant.slug) is False
    assert api_client_is_active(mine.client_id, "no-such-tenant") is False
    assert api_client_is_active("x' OR '1'='1", tenant.slug) is False


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")


def test_request__token_with_exactly_the_documented_claims__accepted(tenant):
    """api.md names `sub`, `tenant`, `scope`, `iat`, `exp`, `jti`: a token of those alone, signed with
    the secret, is an access token (simplejwt's `token_type` is ours to add, not the caller's)."""
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    claims = {**_claims(sub=issued.client.client_id, scope="flags:read")}
    del claims["token_type"]
    response = _get(_signed(claims))
    assert response.status_code == 200, response.content


def test_request__documented_claims_only__scope_and_tenant_still_enforced(tenant, other_tenant):
    issued = api_client_create(tenant=tenant, scopes=["evaluate"])
    claims = _claims(sub=issued.client.client_id, scope="evaluate")
    del claims["token_type"]
    token = _signed(claims)
    response = _get(token)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")
    response = _get(token, tenant=other_tenant.slug)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "tenant_mismatch")


@pytest.mark.parametrize("token_type", ["refresh", "", 1, None])
def test_request__token_type_other_than_access__401(tenant, token_type):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    response = _get(_signed(_claims(sub=issued.client.client_id, token_type=token_type)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
