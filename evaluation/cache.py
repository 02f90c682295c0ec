"""The compiled-ruleset cache (architecture.md, The read path).

Per process and per tenant it holds the compiled ruleset and the ruleset version it was built
from. The version lives in the database (`Tenant.ruleset_version`, bumped after every committed
change) and, with `REDIS_URL`, is mirrored in Redis. A process asks the shared store at most once
per `RULESET_CHECK_INTERVAL` seconds per tenant whether the version moved, so other processes see a
change within that bound (0.5 s by default) and a warm evaluation makes no query. A write in this
process drops the local entry at once (read your writes). One compile at a time per tenant. If the
store is unreachable, the last compiled ruleset keeps serving.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import DatabaseError
from django.db.models import F
from flagsvc_sdk.engine import (
    CompiledRuleset,
    DefinitionError,
    compile_ruleset,
    validate_flag,
    validate_segment,
)

from evaluation import metrics
from flags.mappers import flag_to_engine
from flags.selectors import live_flags_for_evaluation
from segments.mappers import segment_to_engine
from segments.selectors import segments_for_evaluation
from tenancy.models import Tenant

logger = logging.getLogger("flagsvc.evaluation")


class RulesetUnavailable(Exception):
    """No compiled ruleset in memory and the store cannot be read."""


@dataclass(slots=True)
class _Entry:
    ruleset: CompiledRuleset
    version: int
    checked_at: float


# The Redis mirror of a tenant's version expires: a bump whose publish was lost (Redis unreachable at
# that moment, or two bumps racing) is read again from the database, the source of truth, within this
# many seconds instead of never. Costs a primary-key query per tenant and process per expiry.
SHARED_VERSION_TTL = 30


def _redis_key(tenant_id: int) -> str:
    return f"ruleset-version:{tenant_id}"


def _uses_redis() -> bool:
    return bool(settings.REDIS_URL)


def read_shared_version(tenant_id: int) -> int:
    if _uses_redis():
        try:
            value = shared_cache.get(_redis_key(tenant_id))
        except Exception:  # Redis down: fall back to the database, the source of truth.
            value = None
            logger.warning("redis unreachable while reading the ruleset version", exc_info=True)
        if value is not None:
            return int(value)
    version = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).first()
    if version is None:
        raise RulesetUnavailable(f"tenant {tenant_id} is gone")
    if _uses_redis():
        # `add`, not `set`: a reader must not overwrite a newer version that a bump published meanwhile.
        _publish(tenant_id, int(version), only_if_absent=True)
    return int(version)


def _publish(tenant_id: int, version: int, *, only_if_absent: bool = False) -> None:
    try:
        if only_if_absent:
            shared_cache.add(_redis_key(tenant_id), version, timeout=SHARED_VERSION_TTL)
        else:
            shared_cache.set(_redis_key(tenant_id), version, timeout=SHARED_VERSION_TTL)
    except Exception:
        logger.warning("redis unreachable while publishing the ruleset version", exc_info=True)


def bump_ruleset_version(tenant_id: int) -> None:
    """Called after commit by the receivers of every model that affects evaluation."""
    Tenant.objects.filter(pk=tenant_id).update(ruleset_version=F("ruleset_version") + 1)
    if _uses_redis():
        version = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).first()
        if version is not None:
            _publish(tenant_id, int(version))
    RULESETS.forget(tenant_id)


def build_ruleset(tenant: Tenant, version: int) -> CompiledRuleset:
    started = time.perf_counter()
    flags = [flag_to_engine(flag) for flag in live_flags_for_evaluation(tenant=tenant)]
    segments = [segment_to_engine(segment) for segment in segments_for_evaluation(tenant=tenant)]
    # Compiling creates many small objects and no cycles; collecting during it doubles its time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        ruleset = compile_ruleset(tenant=tenant.slug, version=str(version), flags=flags, segments=segments)
    except DefinitionError:
        ruleset = _compile_skipping_invalid(tenant, version, flags, segments)
    finally:
        if gc_was_enabled:
            gc.enable()
    metrics.COMPILE_SECONDS.observe(time.perf_counter() - started)
    metrics.LIVE_FLAGS.labels(tenant=tenant.slug).set(len(flags))
    return ruleset


def _compile_skipping_invalid(
    tenant: Tenant, version: int, flags: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> CompiledRuleset:
    """A stored flag or segment that no longer validates must not take the tenant down: skip it, loudly.

    A skipped segment takes the flags that refer to it along (they fail validation below).
    """
    valid_segments = []
    for segment in segments:
        try:
            validate_segment(segment)
            valid_segments.append(segment)
        except DefinitionError as exc:
            logger.error(
                "stored segment does not compile; it is left out",
                extra={"segment": segment.get("key"), "error": str(exc)},
            )
    segments = valid_segments
    segment_keys = {segment["key"] for segment in segments}
    valid = []
    for flag in flags:
        try:
            validate_flag({k: v for k, v in flag.items() if k != "version"}, segment_keys=segment_keys)
            valid.append(flag)
        except DefinitionError as exc:
            logger.error(
                "stored flag does not compile; it is left out", extra={"flag": flag["key"], "error": str(exc)}
            )
    return compile_ruleset(tenant=tenant.slug, version=str(version), flags=valid, segments=segments)


class RulesetCache:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self.warmed = False

    def get(self, tenant: Tenant) -> CompiledRuleset:
        entry = self._entries.get(tenant.pk)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < settings.RULESET_CHECK_INTERVAL:
            metrics.CACHE_HITS.inc()
            return entry.ruleset
        try:
            shared = read_shared_version(tenant.pk)
        except (DatabaseError, RulesetUnavailable):
            if entry is not None:
                metrics.CACHE_STALE_SERVES.inc()
                return entry.ruleset
            raise
        if entry is not None and entry.version == shared:
            entry.checked_at = now
            metrics.CACHE_HITS.inc()
            return entry.ruleset
        return self._compile(tenant, shared)

    def _compile(self, tenant: Tenant, version: int) -> CompiledRuleset:
        with self._lock_for(tenant.pk):
            entry = self._entries.get(tenant.pk)
            if entry is not None and entry.version >= version:
                return entry.ruleset
            metrics.CACHE_MISSES.inc()
            ruleset = build_ruleset(tenant, version)
            self._entries[tenant.pk] = _Entry(ruleset=ruleset, version=version, checked_at=time.monotonic())
            return ruleset

    def _lock_for(self, tenant_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    def forget(self, tenant_id: int) -> None:
        entry = self._entries.get(tenant_id)
        if entry is not None:
            entry.checked_at = float("-inf")

    def clear(self) -> None:
        self._entries.clear()

    def is_warm(self, tenant_id: int) -> bool:
        return tenant_id in self._entries

    def warm_all(self) -> int:
        """Compile every active tenant; returns how many compiled.

        A tenant whose stored rules do not compile is logged and left cold: its own evaluations fail,
        but it must not make the whole process unready (and so take every other tenant down with it).
        The database being down does make it fail.
        """
        compiled = 0
        for tenant in Tenant.objects.filter(is_active=True):
            try:
                self.get(tenant)
            except DatabaseError:
                raise
            except Exception:
                logger.exception(
                    "a tenant's ruleset does not compile; it is left cold", extra={"tenant": tenant.slug}
                )
                continue
            compiled += 1
        self.warmed = True
        return compiled


RULESETS = RulesetCache()
