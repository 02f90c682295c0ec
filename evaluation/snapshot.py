"""The signed snapshot of a tenant's ruleset (api.md, Snapshot; ADR 0014).

The body is the engine's input, exactly what the compiled-ruleset cache compiles
(`evaluation.cache.ruleset_documents`, less any stored definition that no longer compiles), as
`{"tenant", "ruleset_version", "generated_at", "flags", "segments"}`. It is a pure function of the
database at one ruleset version: keys sorted, no whitespace, flags and segments ordered by key, and
`generated_at` is the moment that version was committed (`Tenant.ruleset_changed_at`), not the moment
of the request. So every process, every request and `manage.py publish_snapshot` make the same bytes
for one version, the strong `ETag` (`"<ruleset_version>"`) names exactly those bytes, and the
signature over them stays valid for as long as the version is current.

Each process builds the signed body once per (tenant, version) and keeps it (with its gzip form,
made on first use) in a cache bounded by `SNAPSHOT_CACHE_BYTES`; serving a snapshot is then a
version check and a write of bytes already made.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from evaluation import metrics
from evaluation.cache import (
    RULESETS,
    RulesetUnavailable,
    ruleset_documents,
    usable_documents,
)
from evaluation.snapshot_keys import Keyring, serving_keyring
from kernel.http_caching import gzip_bytes
from kernel.timefmt import iso
from tenancy.models import Tenant

logger = logging.getLogger("flagsvc.snapshot")

_CONSISTENT_READ_ATTEMPTS = 5


class SignedSnapshot:
    """One tenant's snapshot body at one ruleset version, its signature, and its gzip form."""

    __slots__ = (
        "_gzipped",
        "_lock",
        "body",
        "flag_count",
        "kid",
        "signature",
        "signed_by",
        "tenant",
        "version",
    )

    def __init__(
        self,
        *,
        tenant: str,
        version: int,
        body: bytes,
        signature: str,
        kid: str,
        signed_by: bytes,
        flag_count: int,
    ) -> None:
        self.tenant = tenant
        self.version = version
        self.body = body
        self.signature = signature
        self.kid = kid
        self.signed_by = signed_by  # the raw public key: a new key under the same kid still re-signs
        self.flag_count = flag_count
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def gzipped(self) -> bytes:
        """The body gzipped (the same bytes every time), made once."""
        if self._gzipped is None:
            with self._lock:
                if self._gzipped is None:
                    self._gzipped = gzip_bytes(self.body)
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.body) + len(self._gzipped or b"")


def snapshot_body(
    *,
    tenant: str,
    version: int,
    generated_at: datetime,
    flags: list[dict[str, Any]],
    segments: list[dict[str, Any]],
) -> bytes:
    """The snapshot's bytes: canonical JSON (sorted keys, no whitespace, UTF-8)."""
    document = {
        "tenant": tenant,
        "ruleset_version": str(version),
        "generated_at": iso(generated_at),
        "flags": flags,
        "segments": segments,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _version_row(tenant: Tenant) -> tuple[int, datetime]:
    row = Tenant.objects.filter(pk=tenant.pk).values_list("ruleset_version", "ruleset_changed_at").first()
    if row is None:
        raise RulesetUnavailable(f"tenant {tenant.slug} is gone")
    return int(row[0]), row[1]


def _documents_at_one_version(
    tenant: Tenant,
) -> tuple[int, datetime, list[dict[str, Any]], list[dict[str, Any]], bool]:
    """The tenant's documents and the version they are at: the version is read before and after them,
    and a change committed in between (the two differ) reads them again. The last item says whether
    the two reads agreed (a tenant written to without pause may not let them; such a body is served
    but not kept).
    """
    for _ in range(_CONSISTENT_READ_ATTEMPTS):
        before = _version_row(tenant)
        flags, segments = ruleset_documents(tenant)
        after = _version_row(tenant)
        if before == after:
            return before[0], before[1], flags, segments, True
    return before[0], before[1], flags, segments, False


def _compilable(
    tenant: Tenant, version: int, flags: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The documents the server evaluates: those the ruleset of this version compiled, when this
    process holds it (the usual case), else those that validate (the same rule, `usable_documents`)."""
    try:
        compiled = RULESETS.get(tenant)
    except (RulesetUnavailable, DatabaseError):
        compiled = None
    if compiled is not None and compiled.version == str(version):
        return (
            [flag for flag in flags if flag["key"] in compiled.flags],
            [segment for segment in segments if segment["key"] in compiled.segments],
        )
    return usable_documents(flags, segments)


def build_snapshot(tenant: Tenant, keyring: Keyring) -> tuple[SignedSnapshot, bool]:
    """A freshly built signed snapshot, and whether it may be kept (its version is certain)."""
    started = time.perf_counter()
    version, changed_at, flags, segments, consistent = _documents_at_one_version(tenant)
    flags, segments = _compilable(tenant, version, flags, segments)
    body = snapshot_body(
        tenant=tenant.slug, version=version, generated_at=changed_at, flags=flags, segments=segments
    )
    _, kid = keyring.require_signer()
    snapshot = SignedSnapshot(
        tenant=tenant.slug,
        version=version,
        body=body,
        signature=keyring.signature_header(body),
        kid=kid,
        signed_by=keyring.published[0].public_raw,
        flag_count=len(flags),
    )
    elapsed = time.perf_counter() - started
    metrics.SNAPSHOT_BUILD_SECONDS.observe(elapsed)
    metrics.SNAPSHOT_BYTES.labels(tenant=tenant.slug).set(len(body))
    facts = {
        "tenant": tenant.slug,
        "ruleset_version": version,
        "bytes": len(body),
        "flags": len(flags),
        "segments": len(segments),
        "build_ms": round(elapsed * 1000, 1),
    }
    if len(body) > settings.SNAPSHOT_WARN_BYTES:
        logger.warning(
            "snapshot body over the warning size: served, but SDKs pay for it on every change",
            extra={**facts, "warn_bytes": settings.SNAPSHOT_WARN_BYTES},
        )
    else:
        logger.info("snapshot built", extra=facts)
    return snapshot, consistent


class SnapshotCache:
    """Per tenant, the newest signed snapshot this process built; least recently used go first once
    the bodies pass `SNAPSHOT_CACHE_BYTES` (the one being served always stays)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, SignedSnapshot] = OrderedDict()
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}

    def current(self, tenant: Tenant) -> SignedSnapshot:
        """The snapshot of the tenant's current ruleset version, built if this process has none.

        The current version is the compiled-ruleset cache's: a write in this process is seen at once,
        one elsewhere within `RULESET_CHECK_INTERVAL`, and a warm request makes no query. With the
        database down, the last snapshot built keeps serving.
        """
        keyring = serving_keyring()
        keyring.require_signer()
        signer = keyring.published[0].public_raw
        held = self._get(tenant.pk)
        usable = held if held is not None and held.signed_by == signer else None
        try:
            version = int(RULESETS.get(tenant).version)
        except (DatabaseError, RulesetUnavailable):
            if usable is not None:
                return usable
            raise
        if usable is not None and usable.version == version:
            return usable
        with self._lock_for(tenant.pk):
            held = self._get(tenant.pk)
            if held is not None and held.signed_by == signer and held.version == version:
                return held
            try:
                snapshot, keep = build_snapshot(tenant, keyring)
            except DatabaseError:
                if usable is not None:
                    return usable
                raise
            if keep:
                self._put(tenant.pk, snapshot)
            return snapshot

    def _get(self, tenant_id: int) -> SignedSnapshot | None:
        with self._guard:
            snapshot = self._entries.get(tenant_id)
            if snapshot is not None:
                self._entries.move_to_end(tenant_id)
            return snapshot

    def _put(self, tenant_id: int, snapshot: SignedSnapshot) -> None:
        with self._guard:
            self._entries[tenant_id] = snapshot
            self._entries.move_to_end(tenant_id)
            budget = settings.SNAPSHOT_CACHE_BYTES
            total = sum(entry.size for entry in self._entries.values())
            while total > budget and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.size

    def _lock_for(self, tenant_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


SNAPSHOTS = SnapshotCache()
