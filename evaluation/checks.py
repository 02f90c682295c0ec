"""System checks for what evaluation needs from the environment: the snapshot signing key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from evaluation.snapshot_keys import SnapshotKeyError, current_keyring


@register(Tags.security, deploy=False)
def snapshot_signing_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A malformed key is an error; no key (DEBUG off), or the development key, a warning."""
    try:
        keyring = current_keyring()
    except SnapshotKeyError as exc:
        return [Error(str(exc), hint="docs/operations.md, Signed snapshots", id="evaluation.E001")]
    if keyring.signing_key is None:
        return [
            Warning(
                "No SNAPSHOT_SIGNING_KEY: GET /v1/snapshot and /v1/snapshot/keys answer 503 "
                "`snapshot_signing_key_missing`, so SDKs cannot evaluate locally.",
                hint="Generate one with `python manage.py generate_snapshot_key` (docs/operations.md).",
                id="evaluation.W001",
            )
        ]
    if keyring.development and settings.DEBUG:
        return [
            Warning(
                "Snapshots are signed with the INSECURE development key (DEBUG without SNAPSHOT_SIGNING_KEY).",
                hint="Anyone can forge such a snapshot; set SNAPSHOT_SIGNING_KEY outside development.",
                id="evaluation.W002",
            )
        ]
    return []
