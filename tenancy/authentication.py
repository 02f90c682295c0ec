"""Bearer JWT authentication for API clients (api.md, Auth).

Tokens are HS256 only: simplejwt's backend passes `algorithms=["HS256"]` to PyJWT, so `alg: none`
and every other algorithm fail signature verification. `exp` and `jti` must be present.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenancy.principals import ApiPrincipal
from tenancy.selectors import api_client_is_active

MAX_TOKEN_LENGTH = 4096


class ApiClientJWTAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, AccessToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or " " in raw:
            raise AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        if len(raw) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("The token is too long.")
        try:
            token = AccessToken(raw)
        except TokenError as exc:
            raise AuthenticationFailed(f"The token is not valid: {exc}") from None
        principal = _principal_from_claims(token.payload)
        if not api_client_is_active(principal.client_id, principal.tenant_slug):
            raise AuthenticationFailed("The API client of this token is revoked or unknown.")
        return principal, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="flagsvc"'


def _principal_from_claims(claims: dict[str, Any]) -> ApiPrincipal:
    client_id, tenant, scope, jti = (claims.get(k) for k in ("sub", "tenant", "scope", "jti"))
    if not all(isinstance(v, str) and v for v in (client_id, tenant, jti)) or not isinstance(scope, str):
        raise AuthenticationFailed("The token lacks the sub, tenant, scope or jti claim.")
    return ApiPrincipal(
        client_id=str(client_id),
        tenant_slug=str(tenant),
        scopes=frozenset(str(scope).split()),
        token_id=str(jti),
    )
