"""The keys of API tokens: one signs, earlier ones still verify, so `JWT_SECRET` can be rotated
without logging every client out.

A token names its key in the JWT header (`kid`, derived from the key, never the key itself); the
key that signs is `JWT_SECRET`, and `JWT_PREVIOUS_SECRETS` verify only. A token whose `kid` names no
key held here is refused; a token without `kid` (issued before key ids) is checked against each key
held, `JWT_SECRET` first. HS256 only, as before.

The rotation (docs/operations.md, "Rotating JWT_SECRET"): move the old secret to
`JWT_PREVIOUS_SECRETS`, set a new `JWT_SECRET`, restart; once every token signed with the old one has
expired (`JWT_TTL_SECONDS`), drop it. After a leak, do not keep the leaked secret at all.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import jwt
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken

ALGORITHM = "HS256"
_KID_LABEL = b"flagsvc api token key id\x00"


def key_id(secret: str) -> str:
    """The `kid` of a token key: 16 hex of a labelled SHA-256 of it (it says which key, not what)."""
    return "hs256-" + hashlib.sha256(_KID_LABEL + secret.encode()).hexdigest()[:16]


class RotatingTokenBackend(TokenBackend):
    """simplejwt's HS256 backend with key ids: signs with the first key and names it in `kid`;
    verifies with the key the token names, or with each key when it names none."""

    def __init__(self, secrets: list[str], leeway: Any = None) -> None:
        super().__init__(ALGORITHM, signing_key=secrets[0], leeway=leeway)
        self.kid = key_id(secrets[0])
        self.keys = {key_id(secret): secret for secret in reversed(secrets)}  # the first wins a clash
        self.secrets = secrets

    def encode(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, self.secrets[0], algorithm=ALGORITHM, headers={"kid": self.kid})

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc
        if kid is None:
            candidates = self.secrets
        elif isinstance(kid, str) and kid in self.keys:
            candidates = [self.keys[kid]]
        else:
            raise TokenBackendError("Token is signed with a key this service does not hold")
        for secret in candidates:
            try:
                return jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    leeway=self.get_leeway(),
                    options={"verify_signature": verify, "verify_aud": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError as exc:
                raise TokenBackendExpiredToken("Token is expired") from exc
            except jwt.InvalidTokenError as exc:
                raise TokenBackendError("Token is invalid") from exc
        raise TokenBackendError("Token is invalid")


def token_backend() -> RotatingTokenBackend:
    """The backend of the keys the settings name now."""
    return _backend_of((settings.JWT_SECRET, *settings.JWT_PREVIOUS_SECRETS))


@functools.lru_cache(maxsize=4)  # one set of keys per process; tests change them
def _backend_of(secrets: tuple[str, ...]) -> RotatingTokenBackend:
    return RotatingTokenBackend(list(secrets), leeway=settings.SIMPLE_JWT.get("LEEWAY"))
