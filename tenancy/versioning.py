"""Optimistic concurrency on the write path: the one check of an expected version (`If-Match`, body `version`).

Every write service that takes an `expected_version` calls `check_version` on the locked row before it
writes, so the API, the admin, the importer and the commands refuse a stale version the same way.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from kernel.errors import PreconditionFailed


class Versioned(Protocol):
    """What has a version a caller can expect: a flag, a segment (`VersionedTenantEntity`), a webhook."""

    entity_name: ClassVar[str]
    version: int


def check_version(entity: Versioned, expected_version: int | None) -> None:
    """A stale expectation is a 412 `precondition_failed` naming the current version; nothing is written."""
    if expected_version is not None and expected_version != entity.version:
        raise PreconditionFailed(
            f"The {entity.entity_name} is at version {entity.version}, not {expected_version}; "
            "reload it and retry.",
            details={"current_version": entity.version},
        )
