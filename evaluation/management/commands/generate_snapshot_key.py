"""`manage.py generate_snapshot_key`: a new Ed25519 key pair for signing snapshots, as environment lines."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandParser

from evaluation.snapshot_keys import b64url, derived_kid, raw_public_key


class Command(BaseCommand):
    help = (
        "Print a new snapshot signing key as SNAPSHOT_SIGNING_KEY / SNAPSHOT_SIGNING_KEY_ID lines, and the "
        "`<kid>:<public key>` entry to add to SNAPSHOT_PUBLISHED_KEYS ahead of a rotation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kid", default="", help="key id (default: derived from the public key)")

    def handle(self, *args: Any, **options: Any) -> None:
        key = Ed25519PrivateKey.generate()
        private_raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public_raw = raw_public_key(key.public_key())
        kid = options["kid"] or derived_kid(public_raw)
        self.stdout.write(f"SNAPSHOT_SIGNING_KEY={b64url(private_raw)}")
        self.stdout.write(f"SNAPSHOT_SIGNING_KEY_ID={kid}")
        self.stdout.write(
            f"# publish ahead of a rotation: SNAPSHOT_PUBLISHED_KEYS={kid}:{b64url(public_raw)}"
        )
