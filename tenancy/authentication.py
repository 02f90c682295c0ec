"""Bearer JWT authentication for API clients (api.md, Auth).

Tokens are HS256 only: simplejwt's backend passes `algorithms=["HS256"]` to PyJWT, so `alg: none`
and every other algorithm fail signature verification. `exp` and `jti` must be present.

A token string that verified once is remembered until its `exp` (keyed by the exact bytes, so a
forged or altered token is never a hit): decoding was the largest single cost of an evaluation
request (benchmarks/RESULTS.md). Revocation is still checked on every request.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenancy.principals import ApiPrincipal
from tenancy.selectors import api_client_is_active
from tenancy.token_keys import token_backend

MAX_TOKEN_LENGTH = 4096
MAX_REMEMBERED_TOKENS = 10_000
LAST_INSTANT = 253_402_300_799
"""9999-12-31T23:59:59Z in epoch seconds: the last instant a `datetime` (and simplejwt) can hold."""
_TIME_CLAIMS = ("exp", "iat", "nbf")
_TEXT_CLAIMS = ("sub", "tenant", "jti")

_verified: dict[str, tuple[float, ApiPrincipal]] = {}
_verified_lock = threading.Lock()


def _remember(raw: str, expires_at: float, principal: ApiPrincipal) -> None:
    with _verified_lock:
        if len(_verified) >= MAX_REMEMBERED_TOKENS:
            _verified.clear()
        _verified[raw] = (expires_at, principal)


def forget_verified_tokens() -> None:
    with _verified_lock:
        _verified.clear()


class ApiAccessToken(AccessToken):
    """simplejwt's access token, signed and verified with the keys of `tenancy.token_keys` (a `kid`
    in the header, earlier keys still verifying), whose claims are checked for their types before
    anything reads them: simplejwt turns `exp` into a datetime, and a string or a 400-digit `exp`
    signed with our secret would raise `TypeError` or `OverflowError` there (a 500 instead of a 401)."""

    def get_token_backend(self) -> Any:
        return token_backend()

    def verify(self) -> None:
        problem = claims_problem(self.payload)
        if problem is not None:
            raise TokenError(problem)
        # api.md names the claims a token carries, and `token_type` is not among them: a token without
        # it is an access token (we issue no other kind); one that names another type is still refused.
        self.payload.setdefault("token_type", self.token_type)
        super().verify()


def claims_problem(claims: dict[str, Any]) -> str | None:
    """What is wrong with the claims of a signed token (api.md, Auth), or None."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is None and name != "exp":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= LAST_INSTANT:
            return f"the {name} claim must be a time in epoch seconds"
    for name in _TEXT_CLAIMS:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            return f"the {name} claim must be a non-empty string"
    if "token_type" in claims and claims["token_type"] != "access":
        return "the token_type claim, when present, must be access"
    if not isinstance(claims.get("scope"), str):
        return "the scope claim must be a string of space-separated scopes"
    return None


def _verify(raw: str) -> ApiPrincipal:
    remembered = _verified.get(raw)
    if remembered is not None and remembered[0] > time.time():
        return remembered[1]
    try:
        token = ApiAccessToken(raw)  # type: ignore[arg-type]  # the stubs omit the str form
    except TokenError as exc:
        raise AuthenticationFailed(f"The token is not valid: {exc}") from None
    principal = _principal_from_claims(token.payload)
    _remember(raw, float(token.payload["exp"]), principal)
    return principal


class ApiClientJWTAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or " " in raw:
            raise AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        if len(raw) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("The token is too long.")
        principal = _verify(raw)
        if not api_client_is_active(principal.client_id, principal.tenant_slug):
            raise AuthenticationFailed("The API client of this token is revoked or unknown.")
        return principal, raw

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="flagsvc"'


def _principal_from_claims(claims: dict[str, Any]) -> ApiPrincipal:
    """The caller named by claims that `claims_problem` passed."""
    client_id, tenant, scope, jti = (claims.get(k) for k in ("sub", "tenant", "scope", "jti"))
    return ApiPrincipal(
        client_id=str(client_id),
        tenant_slug=str(tenant),
        scopes=frozenset(str(scope).split()),
        token_id=str(jti),
    )
