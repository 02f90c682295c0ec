"""`manage.py publish_snapshot --tenant T --to DIR`: the signed snapshot as files for a CDN or object store.

Writes, each atomically (a temporary file renamed over the old one), in this order:

- `keys.json`: the `GET /v1/snapshot/keys` document (the public keys);
- `snapshot.json.sig`: the `X-Snapshot-Signature` value, one line;
- `snapshot.json`: the exact bytes `GET /v1/snapshot` serves (uncompressed), which the signature covers;
- `snapshot.json.etag`: the `ETag` value (`"<ruleset_version>"`), one line.

A reader that catches the files between two renames sees a signature that does not verify the body:
it keeps what it had and reads again (the SDK does).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.snapshot import SNAPSHOTS
from evaluation.snapshot_keys import SnapshotSigningUnavailable, serving_keyring
from tenancy.models import Tenant

SNAPSHOT_FILE = "snapshot.json"
SIGNATURE_FILE = "snapshot.json.sig"
ETAG_FILE = "snapshot.json.etag"
KEYS_FILE = "keys.json"


def write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # published files: world-readable, as a CDN origin serves them
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Write a tenant's signed snapshot (snapshot.json, snapshot.json.sig, snapshot.json.etag) and the "
        "public keys (keys.json) into a directory, byte for byte as GET /v1/snapshot serves them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--to", required=True, help="directory to write into (created if missing)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"], is_active=True).first()
        if tenant is None:
            raise CommandError(f"No active tenant {options['tenant']!r}.")
        try:
            keyring = serving_keyring()
            snapshot = SNAPSHOTS.current(tenant)
        except SnapshotSigningUnavailable as exc:
            raise CommandError(exc.message) from None
        directory = Path(options["to"])
        directory.mkdir(parents=True, exist_ok=True)
        keys = json.dumps(keyring.keys_document(), sort_keys=True, indent=2).encode() + b"\n"
        write_atomically(directory / KEYS_FILE, keys)
        write_atomically(directory / SIGNATURE_FILE, snapshot.signature.encode("ascii") + b"\n")
        write_atomically(directory / SNAPSHOT_FILE, snapshot.body)
        write_atomically(directory / ETAG_FILE, snapshot.etag.encode("ascii") + b"\n")
        self.stdout.write(
            json.dumps(
                {
                    "tenant": tenant.slug,
                    "ruleset_version": str(snapshot.version),
                    "bytes": len(snapshot.body),
                    "kid": snapshot.kid,
                    "files": [SNAPSHOT_FILE, SIGNATURE_FILE, ETAG_FILE, KEYS_FILE],
                    "directory": str(directory),
                }
            )
        )
