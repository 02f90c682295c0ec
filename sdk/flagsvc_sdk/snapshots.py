"""A signed snapshot: its bytes, its signature, the ruleset compiled from it, and its files.

``GET /v1/snapshot`` answers ``{"tenant", "ruleset_version", "generated_at", "flags", "segments"}``
(``api.md`` "Snapshot"), signed over the exact body. The same two things, body and signature, are
what ``manage.py publish_snapshot`` writes for a CDN or object store and what the client keeps on
disk as its last good snapshot: ``<name>.json`` holds the body byte for byte and
``<name>.json.sig`` the signature header's value (``ed25519 keyid=<kid> sig=<base64url>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flagsvc_sdk.engine import CompiledRuleset, compile_ruleset
from flagsvc_sdk.signing import verify

SIGNATURE_SUFFIX: Final = ".sig"
MAX_SNAPSHOT_BYTES: Final = 256 * 1024 * 1024
"""Refuse to read more than this from a file or URL (a 10,000-flag tenant is some 10-30 MB)."""


class SnapshotRefused(Exception):
    """A snapshot that is not for this tenant, not JSON of the right shape, or does not compile."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified snapshot and the ruleset compiled from it; never changed once built."""

    body: bytes
    signature: str
    kid: str
    ruleset: CompiledRuleset
    etag: str | None = None

    @property
    def version(self) -> str:
        return self.ruleset.version


def load(
    body: bytes,
    signature: str | None,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    tenant: str,
    etag: str | None = None,
) -> Snapshot:
    """Verify ``body`` first (``signing.SignatureRefused``), then parse and compile it.

    Nothing of an unverified body is parsed: a tampered snapshot never reaches ``json.loads``.
    """
    kid = verify(body, signature, keys)
    assert signature is not None  # verify refuses a missing one
    try:
        document = json.loads(body)
    except ValueError as error:
        raise SnapshotRefused(f"the snapshot is not JSON: {error}") from None
    if not isinstance(document, Mapping):
        raise SnapshotRefused("the snapshot is not a JSON object")
    if document.get("tenant") != tenant:
        raise SnapshotRefused(
            f"the snapshot is for tenant {str(document.get('tenant'))[:64]!r}, not {tenant!r}"
        )
    flags, segments = document.get("flags"), document.get("segments")
    if not isinstance(flags, list) or not isinstance(segments, list):
        raise SnapshotRefused('the snapshot needs "flags" and "segments" lists')
    try:
        ruleset = compile_ruleset(
            tenant=tenant,
            version=str(document.get("ruleset_version")),
            flags=flags,
            segments=segments,
        )
    except (ValueError, TypeError, KeyError) as error:  # InvalidDefinition is a ValueError
        raise SnapshotRefused(f"the snapshot does not compile: {error}") from None
    return Snapshot(body=body, signature=signature, kid=kid, ruleset=ruleset, etag=etag)


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def snapshot_file(location: Path, tenant: str) -> Path:
    """The body file of a snapshot at ``location``: the file itself, or in a directory
    ``<tenant>.json`` (``publish_snapshot``'s layout) or ``snapshot.json``."""
    if not location.is_dir():
        return location
    for name in (f"{tenant}.json", "snapshot.json", f"{tenant}/snapshot.json"):
        if (location / name).is_file():
            return location / name
    return location / f"{tenant}.json"


def read_file(location: Path, tenant: str) -> tuple[bytes, str]:
    """Body and signature of a snapshot written as files; ``OSError`` when either is missing."""
    path = snapshot_file(location, tenant)
    with path.open("rb") as handle:
        body = handle.read(MAX_SNAPSHOT_BYTES + 1)
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise OSError(f"{path} is larger than {MAX_SNAPSHOT_BYTES} bytes")
    signature = signature_path(path).read_text(encoding="ascii").strip()
    return body, signature


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, flush it to disk, then rename it over
    ``path``: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_files(path: Path, body: bytes, signature: str) -> None:
    """Keep a verified snapshot as ``path`` and ``path.sig``.

    The signature goes first: a crash between the two renames leaves a pair that does not verify,
    which the next start refuses (and says so) rather than trusting.
    """
    write_atomically(signature_path(path), signature.encode("ascii") + b"\n")
    write_atomically(path, body)


def describe(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
