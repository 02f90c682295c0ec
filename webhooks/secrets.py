"""Webhook signing secrets: generated here, shown once, stored encrypted (ADR 0013).

The worker must sign with the secret itself, so it cannot be stored as a one-way hash as API client
secrets are (ADR 0005). It is encrypted with Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`) under
`WEBHOOK_SECRET_KEYS`: Fernet keys, comma-separated, the first encrypts and every one decrypts, so a key is
rotated by putting a new one first and re-encrypting (`manage.py rotate_webhook_key` is future work). Unset,
one key is derived from SECRET_KEY (HKDF-SHA256, its own label), so a development setup needs nothing more.
A database dump alone therefore reveals no signing secret.
"""

from __future__ import annotations

import base64
import secrets as random_bytes
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, the form Standard Webhooks libraries accept."""
    return PREFIX + base64.b64encode(random_bytes.token_bytes(SECRET_BYTES)).decode("ascii")


def encrypt(secret: str) -> str:
    return _fernet(_keys()).encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    return _fernet(_keys()).decrypt(token.encode("ascii")).decode("utf-8")


def _keys() -> tuple[str, ...]:
    configured = tuple(k.strip() for k in getattr(settings, "WEBHOOK_SECRET_KEYS", []) if k.strip())
    if configured:
        return configured
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"flagsvc webhook signing secrets"
    ).derive(settings.SECRET_KEY.encode("utf-8"))
    return (base64.urlsafe_b64encode(derived).decode("ascii"),)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode("ascii")) for key in keys])
