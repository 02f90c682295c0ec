"""The Ed25519 keys that sign snapshots (api.md, Snapshot; ADR 0014).

From the environment (read in settings, parsed here):

- `SNAPSHOT_SIGNING_KEY`: the private key that signs, as the base64url of its raw 32 bytes or as a
  PKCS#8 PEM (`\\n` may stand for the line breaks); or `SNAPSHOT_SIGNING_KEY_FILE`, a file holding either.
- `SNAPSHOT_SIGNING_KEY_ID`: its key id; by default derived from the public key (`ed25519-<16 hex>`
  of its SHA-256), so a new key always gets a new id.
- `SNAPSHOT_PUBLISHED_KEYS`: more public keys to publish at `GET /v1/snapshot/keys`, comma-separated
  `<kid>:<base64url raw 32 bytes>`: the next key before a rotation, the previous one after it.

Without a key, DEBUG signs with a development key that everyone can derive (logged as a warning);
otherwise the snapshot routes answer 503 `snapshot_signing_key_missing` and a system check warns.
A malformed value is a configuration error (`manage.py check` fails, the routes answer 503).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from kernel.errors import ApiError

logger = logging.getLogger("flagsvc.snapshot")

ALGORITHM = "Ed25519"
KID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEVELOPMENT_KID = "dev-insecure"
_DEVELOPMENT_SEED = hashlib.sha256(b"flagsvc development snapshot key: public, never for production").digest()
"""Anyone can derive this key: it proves nothing, and it exists only under DEBUG."""


class SnapshotKeyError(ValueError):
    """A snapshot key setting is malformed; the message names the setting."""


class SnapshotSigningUnavailable(ApiError):
    status, code = 503, "snapshot_signing_key_missing"
    default_message = (
        "Snapshots are not served: no signing key is configured. The operator sets "
        "SNAPSHOT_SIGNING_KEY (docs/operations.md, Signed snapshots)."
    )


class SnapshotSigningMisconfigured(SnapshotSigningUnavailable):
    code = "snapshot_signing_key_invalid"
    default_message = (
        "Snapshots are not served: the signing key configuration is malformed (the server log and "
        "`manage.py check` say which setting)."
    )


def b64url(raw: bytes) -> str:
    """base64url without padding (RFC 4648 section 5), as JWS writes it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of base64url text, with or without its padding; `ValueError` for anything else."""
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def derived_kid(public_raw: bytes) -> str:
    return "ed25519-" + hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    public_raw: bytes

    def document(self) -> dict[str, str]:
        return {"kid": self.kid, "alg": ALGORITHM, "public_key": b64url(self.public_raw)}

    def verify(self, signature: bytes, body: bytes) -> None:
        """Raises `cryptography.exceptions.InvalidSignature` unless `signature` is this key's over `body`."""
        Ed25519PublicKey.from_public_bytes(self.public_raw).verify(signature, body)


@dataclass(frozen=True)
class Keyring:
    """The key that signs (if any) and every key published, the signing one first."""

    signing_key: Ed25519PrivateKey | None
    kid: str | None
    published: tuple[PublishedKey, ...]
    development: bool

    def require_signer(self) -> tuple[Ed25519PrivateKey, str]:
        if self.signing_key is None or self.kid is None:
            raise SnapshotSigningUnavailable()
        return self.signing_key, self.kid

    def signature_header(self, body: bytes) -> str:
        """`X-Snapshot-Signature`: `ed25519 keyid=<kid> sig=<base64url of the 64-byte signature>`."""
        key, kid = self.require_signer()
        return f"ed25519 keyid={kid} sig={b64url(key.sign(body))}"

    def keys_document(self) -> dict[str, Any]:
        return {"keys": [key.document() for key in self.published]}


def parse_signature_header(header: str) -> tuple[str, bytes]:
    """The key id and signature of an `X-Snapshot-Signature` value; `ValueError` if malformed."""
    match = re.fullmatch(r"\s*ed25519\s+keyid=([A-Za-z0-9._-]{1,64})\s+sig=([A-Za-z0-9_-]+={0,2})\s*", header)
    if match is None:
        raise ValueError("not an `ed25519 keyid=<kid> sig=<base64url>` signature")
    return match.group(1), b64url_decode(match.group(2))


def parse_private_key(text: str, source: str) -> Ed25519PrivateKey:
    text = text.strip().replace("\\n", "\n")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SnapshotKeyError(f"{source}: not a readable unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SnapshotKeyError(f"{source}: the PEM key is not an Ed25519 key")
        return key
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise SnapshotKeyError(
            f"{source}: use the base64url of the raw 32-byte Ed25519 private key, or a PEM"
        ) from None
    if len(raw) != 32:
        raise SnapshotKeyError(f"{source}: an Ed25519 private key is 32 bytes; this one is {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def parse_published_keys(entries: list[str]) -> list[PublishedKey]:
    keys = []
    for entry in entries:
        kid, separator, encoded = entry.partition(":")
        kid = kid.strip()
        if not separator or not KID_PATTERN.fullmatch(kid):
            raise SnapshotKeyError(
                f"SNAPSHOT_PUBLISHED_KEYS: {entry[:40]!r} is not `<kid>:<base64url public key>` "
                "(a kid is 1-64 letters, digits, `.`, `_` or `-`)"
            )
        try:
            raw = b64url_decode(encoded)
        except ValueError:
            raise SnapshotKeyError(f"SNAPSHOT_PUBLISHED_KEYS: the key of {kid!r} is not base64url") from None
        if len(raw) != 32:
            raise SnapshotKeyError(f"SNAPSHOT_PUBLISHED_KEYS: the key of {kid!r} is not 32 bytes")
        keys.append(PublishedKey(kid, raw))
    return keys


def _read_key_text() -> tuple[str, str]:
    text = str(getattr(settings, "SNAPSHOT_SIGNING_KEY", "") or "")
    if text:
        return text, "SNAPSHOT_SIGNING_KEY"
    path = str(getattr(settings, "SNAPSHOT_SIGNING_KEY_FILE", "") or "")
    if not path:
        return "", ""
    try:
        return Path(path).read_text(encoding="ascii"), "SNAPSHOT_SIGNING_KEY_FILE"
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotKeyError(f"SNAPSHOT_SIGNING_KEY_FILE: cannot read {path}: {exc}") from None


def serving_keyring() -> Keyring:
    """`current_keyring()` for a route: a malformed setting is a 503 (and an error in the log), not a 500."""
    try:
        return current_keyring()
    except SnapshotKeyError as exc:
        logger.error("snapshot signing key misconfigured", extra={"error": str(exc)})
        raise SnapshotSigningMisconfigured() from None


def current_keyring() -> Keyring:
    """The keyring the settings describe, parsed once per distinct value of them; `SnapshotKeyError`
    names a malformed setting."""
    text, source = _read_key_text()
    return _keyring(
        text,
        source,
        str(getattr(settings, "SNAPSHOT_SIGNING_KEY_ID", "") or ""),
        tuple(getattr(settings, "SNAPSHOT_PUBLISHED_KEYS", ()) or ()),
        bool(settings.DEBUG),
    )


@functools.lru_cache(maxsize=8)
def _keyring(text: str, source: str, kid: str, published: tuple[str, ...], debug: bool) -> Keyring:
    development = False
    if text:
        signing_key: Ed25519PrivateKey | None = parse_private_key(text, source)
    elif debug:
        signing_key = Ed25519PrivateKey.from_private_bytes(_DEVELOPMENT_SEED)
        development = True
        logger.warning(
            "snapshots are signed with the INSECURE development key (DEBUG, no SNAPSHOT_SIGNING_KEY): "
            "anyone can forge them; set SNAPSHOT_SIGNING_KEY in production",
            extra={"kid": DEVELOPMENT_KID},
        )
    else:
        signing_key = None
    keys: list[PublishedKey] = []
    if signing_key is not None:
        public_raw = raw_public_key(signing_key.public_key())
        if development:
            kid = DEVELOPMENT_KID
        elif kid and not KID_PATTERN.fullmatch(kid):
            raise SnapshotKeyError("SNAPSHOT_SIGNING_KEY_ID: 1-64 letters, digits, `.`, `_` or `-`")
        kid = kid or derived_kid(public_raw)
        keys.append(PublishedKey(kid, public_raw))
    for extra in parse_published_keys(list(published)):
        if any(key.kid == extra.kid for key in keys):
            if keys[0].kid == extra.kid and keys[0].public_raw == extra.public_raw:
                continue  # the signing key listed again: published once
            raise SnapshotKeyError(f"SNAPSHOT_PUBLISHED_KEYS: the kid {extra.kid!r} names two keys")
        keys.append(extra)
    return Keyring(
        signing_key=signing_key,
        kid=keys[0].kid if signing_key is not None else None,
        published=tuple(keys),
        development=development,
    )
