"""The snapshot's signature (``api.md`` "Snapshot"): Ed25519 over the exact uncompressed body bytes.

The header is ``X-Snapshot-Signature: ed25519 keyid=<kid> sig=<base64url>``; the public keys are
``{"keys": [{"kid", "alg": "Ed25519", "public_key": "<base64url>"}]}`` (``GET /v1/snapshot/keys``)
or pinned by the caller. A body is trusted only when a key we hold under that key id verifies it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_HEADER: Final = "X-Snapshot-Signature"
MAX_KEYS: Final = 16


class SignatureRefused(Exception):
    """The snapshot is not proven to come from the service; ``unknown_key`` when only the key id is
    the problem (a key published after ours was fetched: worth fetching the keys again)."""

    def __init__(self, message: str, *, unknown_key: bool = False) -> None:
        super().__init__(message)
        self.unknown_key = unknown_key


def b64url_decode(text: str) -> bytes:
    """Base64url with or without its ``=`` padding; raises ``ValueError`` on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError(f"not base64url text ({error})") from None


def public_key(encoded: str) -> Ed25519PublicKey:
    raw = b64url_decode(encoded)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes; got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_keys(document: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a ``GET /v1/snapshot/keys`` body by key id; other algorithms are skipped.

    Raises ``ValueError`` when the document has no usable key.
    """
    if isinstance(document, bytes | str):
        document = json.loads(document)
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError('a key set is {"keys": [...]}')
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in entries[:MAX_KEYS]:
        if not isinstance(entry, Mapping) or entry.get("alg") != "Ed25519":
            continue
        kid, encoded = entry.get("kid"), entry.get("public_key")
        if isinstance(kid, str) and kid and isinstance(encoded, str):
            keys[kid] = public_key(encoded)
    if not keys:
        raise ValueError("the key set holds no Ed25519 key")
    return keys


def pinned_keys(trusted: Mapping[str, str] | Any) -> dict[str, Ed25519PublicKey]:
    """Keys the caller pins: ``{kid: base64url public key}`` or a ``/v1/snapshot/keys`` document."""
    if isinstance(trusted, Mapping) and "keys" not in trusted:
        return {str(kid): public_key(encoded) for kid, encoded in trusted.items()}
    return parse_keys(trusted)


def parse_header(value: str) -> tuple[str, bytes]:
    """``(kid, signature bytes)`` of ``ed25519 keyid=<kid> sig=<base64url>``."""
    parts = value.strip().split()
    if len(parts) < 3 or parts[0].lower() != "ed25519":
        raise SignatureRefused(f"not an ed25519 signature header: {value[:100]!r}")
    fields = dict(part.partition("=")[::2] for part in parts[1:])
    kid, sig = fields.get("keyid"), fields.get("sig")
    if not kid or not sig:
        raise SignatureRefused("the signature header needs keyid= and sig=")
    try:
        signature = b64url_decode(sig)
    except ValueError as error:
        raise SignatureRefused(f"the signature is {error}") from None
    if len(signature) != 64:
        raise SignatureRefused(f"an Ed25519 signature is 64 bytes; got {len(signature)}")
    return kid, signature


def verify(body: bytes, header: str | None, keys: Mapping[str, Ed25519PublicKey]) -> str:
    """Raise ``SignatureRefused`` unless ``header`` is a valid signature of ``body`` by one of
    ``keys``; return the key id that signed it."""
    if not header:
        raise SignatureRefused(f"the snapshot carries no {SIGNATURE_HEADER}")
    kid, signature = parse_header(header)
    key = keys.get(kid)
    if key is None:
        raise SignatureRefused(
            f"the snapshot is signed by unknown key {kid[:64]!r}", unknown_key=True
        )
    try:
        key.verify(signature, body)
    except InvalidSignature:
        raise SignatureRefused(f"the signature by key {kid[:64]!r} does not verify") from None
    return kid
