"""The signed snapshot of a tenant's ruleset (api.md, Snapshot; ADR 0017).

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

The body is built from the compiled ruleset the server evaluates at that version (the usual case:
the process holds it), so the snapshot holds exactly what the server serves, and from the JSON text
of each definition: a definition whose compiled object did not change since the last build reuses
its text. After one write to a 10,000-flag tenant a process serialises one flag and joins the rest,
instead of reading and serialising the tenant again. Both ways of building (from the compiled
ruleset, or from the database when the process holds no ruleset of that version) go through one
assembler, `body_from_texts`, and one serialisation, `canonical`, so they cannot make different
bytes for the same documents.
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
from flagsvc_sdk.engine import CompiledRuleset

from evaluation import metrics
from evaluation.cache import (
    RULESETS,
    RulesetUnavailable,
    ruleset_documents,
    usable_documents,
)
from evaluation.snapshot_keys import Keyring, serving_keyring
from evaluation.texts import NO_RULESET_TEXTS, RulesetTexts, texts_of
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
        "texts",
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
        texts: RulesetTexts = NO_RULESET_TEXTS,
    ) -> None:
        self.tenant = tenant
        self.version = version
        self.body = body
        self.signature = signature
        self.kid = kid
        self.signed_by = signed_by  # the raw public key: a new key under the same kid still re-signs
        self.flag_count = flag_count
        self.texts = texts  # for the next version's build
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
        # The texts hold about the body's size again (the same JSON, in pieces).
        return 2 * len(self.body) + len(self._gzipped or b"")


def canonical(value: Any) -> str:
    """The snapshot's one serialisation: sorted keys, no whitespace, UTF-8 text, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def body_from_texts(
    *, tenant: str, version: int, generated_at: datetime, flags: list[str], segments: list[str]
) -> bytes:
    """The snapshot's bytes from each definition's `canonical` text: exactly `canonical` of the whole
    document (its keys in sorted order: flags, generated_at, ruleset_version, segments, tenant)."""
    return (
        f'{{"flags":[{",".join(flags)}],"generated_at":{canonical(iso(generated_at))},'
        f'"ruleset_version":{canonical(str(version))},"segments":[{",".join(segments)}],'
        f'"tenant":{canonical(tenant)}}}'
    ).encode()


def snapshot_body(
    *,
    tenant: str,
    version: int,
    generated_at: datetime,
    flags: list[dict[str, Any]],
    segments: list[dict[str, Any]],
) -> bytes:
    """The snapshot's bytes: canonical JSON (sorted keys, no whitespace, UTF-8)."""
    return body_from_texts(
        tenant=tenant,
        version=version,
        generated_at=generated_at,
        flags=[canonical(flag) for flag in flags],
        segments=[canonical(segment) for segment in segments],
    )


def _flag_text(flag: Any) -> str:
    return canonical({**flag.doc, "version": flag.version})


def _segment_text(segment: Any) -> str:
    return canonical(segment.doc)


def _texts_of(ruleset: CompiledRuleset, held: RulesetTexts) -> RulesetTexts:
    """The texts of a compiled ruleset's flags (document plus `version`, as `flag_to_engine` makes
    them) and segments (the document), reusing those of `held` whose compiled object is unchanged
    (`evaluation.texts`)."""
    return RulesetTexts(
        flags=texts_of(ruleset.flags, held.flags, _flag_text),
        segments=texts_of(ruleset.segments, held.segments, _segment_text),
    )


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


def _from_compiled(tenant: Tenant, held: RulesetTexts) -> tuple[int, datetime, RulesetTexts] | None:
    """The texts of the ruleset this process evaluates, when it is the database's current version
    (else None: the caller reads the documents)."""
    try:
        compiled = RULESETS.get(tenant)
    except RulesetUnavailable:
        return None
    version, changed_at = _version_row(tenant)
    if compiled.version != str(version):
        return None
    return version, changed_at, _texts_of(compiled, held)


def build_snapshot(
    tenant: Tenant, keyring: Keyring, held: RulesetTexts = NO_RULESET_TEXTS
) -> tuple[SignedSnapshot, bool]:
    """A freshly built signed snapshot, and whether it may be kept (its version is certain).

    `held`: the texts of the previous build (`SignedSnapshot.texts`), reused where unchanged.
    """
    started = time.perf_counter()
    made = _from_compiled(tenant, held)
    if made is not None:
        version, changed_at, texts = made
        flag_texts, segment_texts = texts.flags.texts, texts.segments.texts
        consistent = True
    else:
        version, changed_at, flags, segments, consistent = _documents_at_one_version(tenant)
        flags, segments = _compilable(tenant, version, flags, segments)
        flag_texts = [canonical(flag) for flag in flags]
        segment_texts = [canonical(segment) for segment in segments]
        texts = NO_RULESET_TEXTS
    body = body_from_texts(
        tenant=tenant.slug,
        version=version,
        generated_at=changed_at,
        flags=flag_texts,
        segments=segment_texts,
    )
    flags_count, segments_count = len(flag_texts), len(segment_texts)
    _, kid = keyring.require_signer()
    snapshot = SignedSnapshot(
        tenant=tenant.slug,
        version=version,
        body=body,
        signature=keyring.signature_header(body),
        kid=kid,
        signed_by=keyring.published[0].public_raw,
        flag_count=flags_count,
        texts=texts,
    )
    elapsed = time.perf_counter() - started
    metrics.SNAPSHOT_BUILD_SECONDS.observe(elapsed)
    metrics.SNAPSHOT_BYTES.labels(tenant=tenant.slug).set(len(body))
    facts = {
        "tenant": tenant.slug,
        "ruleset_version": version,
        "bytes": len(body),
        "flags": flags_count,
        "segments": segments_count,
        "from_compiled": made is not None,
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
                snapshot, keep = build_snapshot(
                    tenant, keyring, NO_RULESET_TEXTS if held is None else held.texts
                )
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
