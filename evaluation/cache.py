"""The compiled-ruleset cache (architecture.md, The read path).

Per process and per tenant it holds the compiled ruleset and the ruleset version it was built
from. The version lives in the database (`Tenant.ruleset_version`, bumped in every committed
change) and, with `REDIS_URL`, is mirrored in Redis. A process asks the shared store at most once
per `RULESET_CHECK_INTERVAL` seconds per tenant whether the version moved, so other processes see a
change within that bound (0.5 s by default), sooner when the writer's announcement reaches them
(`evaluation.version_news`), and a warm evaluation makes no query. A write in this
process drops the local entry at once (read your writes). One compile at a time per tenant. If the
store is unreachable, the last compiled ruleset keeps serving.

A process that holds an older version catches up incrementally (ADR 0018): it reads the changes after
its version from the outbox (`audit.outbox.changes_after_version`: at least one event per version,
each naming the flag or segment written; the events of one transaction share its version), loads only
those definitions and asks the engine's `recompile` to apply them. It compiles the whole tenant instead whenever it cannot be sure: a version with no event (a gap,
pruned events), an entity it does not know, too many changes, a definition that does not compile, or a
ruleset that was built by leaving invalid stored definitions out.

At most `RULESET_CACHE_MAX_FLAGS` compiled flags are kept per process: past it, the tenants used least
recently are dropped, and compiled again on their next evaluation.

Every compile from the database also keeps the engine's input documents in `tenancy.last_known`
(Redis, or a local file), so that a process that starts while the database is down, or that has an
older version in memory, serves the newest ruleset any process compiled (ADR 0007). Such an entry
is provisional: once the database answers, it is compiled again from the database.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import DatabaseError
from flagsvc_sdk.engine import (
    CompiledRuleset,
    DefinitionError,
    compile_ruleset,
    recompile,
    validate_flag,
    validate_segment,
)

from audit.outbox import changes_after_version
from evaluation import metrics, version_news
from evaluation.texts import NO_RULESET_TEXTS, RulesetTexts, releasing, texts_of
from flags.mappers import flag_to_engine
from flags.selectors import live_flags_for_evaluation, live_flags_with_keys
from segments.mappers import segment_to_engine
from segments.selectors import segments_for_evaluation, segments_with_keys
from tenancy import last_known
from tenancy.models import Tenant

logger = logging.getLogger("flagsvc.evaluation")


class RulesetUnavailable(Exception):
    """No compiled ruleset in memory and the store cannot be read."""


@dataclass(slots=True)
class _Entry:
    ruleset: CompiledRuleset
    version: int
    checked_at: float
    # False for a ruleset restored from the last known documents: the database has not confirmed it.
    confirmed: bool = True
    # False when the compile left invalid stored definitions out: a later change may make one valid
    # again, which only a full compile sees, so this entry is never caught up incrementally.
    whole: bool = True
    # The JSON text of each compiled definition in the last known record this process wrote
    # (`kept_body`), carried from entry to entry by catch-ups: the next record reuses the texts of
    # the definitions that did not change.
    texts: RulesetTexts = NO_RULESET_TEXTS


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


def ruleset_version_committed(tenant_id: int) -> None:
    """Called after commit by the receivers of every model that affects evaluation.

    The version itself was bumped inside the change's transaction, under the tenant's lock
    (`tenancy.ruleset.next_ruleset_version`, from the audit receiver that writes the change event),
    so that the event can name it; here it is mirrored in Redis and this process drops its entry.
    """
    if _uses_redis():
        version = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).first()
        if version is not None:
            _publish(tenant_id, int(version))
            version_news.announce(tenant_id, int(version))  # other processes check it now, not later
    RULESETS.forget(tenant_id)


MAX_CATCH_UP_CHANGES = 500
"""More changes than this since the version a process holds: compile the whole tenant instead."""


def build_ruleset(tenant: Tenant, version: int) -> CompiledRuleset:
    return compile_documents(tenant, version, *ruleset_documents(tenant))


@dataclass(frozen=True, slots=True)
class CatchUp:
    """The changes between a held ruleset version and `version`: the keys written or removed."""

    version: int
    flags: frozenset[str]
    segments: frozenset[str]


# Events that change no definition: a change request's life and the rollout breaker. They may name a
# version another event names too (a change request's event carries the current one), which is not a
# gap. A kill switch's one event stands for every flag it turned off (they have no events of their
# own), so it is not among them: it is an unknown entity here, and the tenant is compiled whole.
EVENTS_WITHOUT_DEFINITIONS = frozenset({"change_request", "automation"})


def changes_since(tenant: Tenant, held: int, target: int) -> CatchUp | None:
    """What changed after ruleset version `held`, up to at least `target`; `None` when that cannot be
    known for sure (a version without its event, an unknown entity, too many changes)."""
    rows = changes_after_version(tenant.pk, held, MAX_CATCH_UP_CHANGES + 1)
    if not rows or len(rows) > MAX_CATCH_UP_CHANGES:
        return None
    flags: set[str] = set()
    segments: set[str] = set()
    versions: set[int] = set()
    for version, entity, key in rows:
        versions.add(version)
        if entity == "flag":
            flags.add(key)
        elif entity == "segment":
            segments.add(key)
        elif entity not in EVENTS_WITHOUT_DEFINITIONS:
            return None
    newest = max(versions)
    if versions != set(range(held + 1, newest + 1)) or newest < target:
        return None  # a version with no event: a gap
    return CatchUp(version=newest, flags=frozenset(flags), segments=frozenset(segments))


def catch_up(tenant: Tenant, ruleset: CompiledRuleset, changes: CatchUp) -> CompiledRuleset:
    """`ruleset` with the current definitions of the changed keys: those keys' rows only, then the
    engine's `recompile` (which also recompiles the flags using a changed segment)."""
    started = time.perf_counter()
    flags = [flag_to_engine(flag) for flag in live_flags_with_keys(tenant=tenant, keys=changes.flags)]
    segments = [segment_to_engine(s) for s in segments_with_keys(tenant=tenant, keys=changes.segments)]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        caught_up = recompile(
            ruleset,
            version=str(changes.version),
            flags=flags,
            segments=segments,
            removed_flags=changes.flags - {flag["key"] for flag in flags},
            removed_segments=changes.segments - {segment["key"] for segment in segments},
        )
    finally:
        if gc_was_enabled:
            gc.enable()
    metrics.COMPILE_SECONDS.observe(time.perf_counter() - started)
    metrics.COMPILES_INCREMENTAL.inc()
    metrics.LIVE_FLAGS.labels(tenant=tenant.slug).set(len(caught_up.flags))
    return caught_up


def ruleset_documents(tenant: Tenant) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The engine's input: the tenant's live flags and its segments, as plain documents."""
    flags = [flag_to_engine(flag) for flag in live_flags_for_evaluation(tenant=tenant)]
    segments = [segment_to_engine(segment) for segment in segments_for_evaluation(tenant=tenant)]
    return flags, segments


def compile_documents(
    tenant: Tenant, version: int, flags: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> CompiledRuleset:
    return _compile_whole(tenant, version, flags, segments)[0]


def _compile_whole(
    tenant: Tenant, version: int, flags: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> tuple[CompiledRuleset, bool]:
    """The full compile, and whether every definition made it in (`False`: some were left out)."""
    started = time.perf_counter()
    # Compiling creates many small objects and no cycles; collecting during it doubles its time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    whole = True
    try:
        ruleset = compile_ruleset(tenant=tenant.slug, version=str(version), flags=flags, segments=segments)
    except DefinitionError:
        flags, segments = usable_documents(flags, segments)
        ruleset = compile_ruleset(tenant=tenant.slug, version=str(version), flags=flags, segments=segments)
        whole = False
    finally:
        if gc_was_enabled:
            gc.enable()
    metrics.COMPILE_SECONDS.observe(time.perf_counter() - started)
    metrics.COMPILES_FULL.inc()
    metrics.LIVE_FLAGS.labels(tenant=tenant.slug).set(len(flags))
    return ruleset, whole


def keep_last_known(
    tenant: Tenant,
    version: int,
    flags: list[dict[str, Any]],
    segments: list[dict[str, Any]],
    compiled: _Entry | None = None,
) -> None:
    """Keep the documents of `version` unless a newer version is kept, or the database says otherwise.

    `compiled`: the entry whose ruleset was compiled from every one of these documents; the record
    is then written from it (`kept_body`), and the entry keeps the texts for the next write.
    """
    if last_known.stored_version(tenant.slug, last_known.RULESET) == version:
        return  # kept already (by this process or another): the store would refuse it, unserialised
    if compiled is not None:
        body, compiled.texts = kept_body(tenant.pk, compiled.ruleset, compiled.texts)
    else:
        body = last_known.dumps({"tenant_id": tenant.pk, "flags": flags, "segments": segments})
    _keep_text(tenant, version, body)


def keep_last_known_compiled(tenant: Tenant, entry: _Entry) -> None:
    """Keep the entry's version (the documents its ruleset was compiled from) unless this version or a
    newer one is kept or claimed already (`last_known.claim_version`), so that of all the processes
    applying a change, one pays for writing it; and that one serialises only the definitions that
    changed since it last wrote (the entry's texts, `kept_body`)."""
    if not last_known.claim_version(tenant.slug, last_known.RULESET, entry.version):
        return
    body, entry.texts = kept_body(tenant.pk, entry.ruleset, entry.texts)
    _keep_text(tenant, entry.version, body)


def _kept_text(compiled: Any) -> str:
    return last_known.dumps({**compiled.doc, "version": compiled.version})


def kept_body(tenant_id: int, ruleset: CompiledRuleset, held: RulesetTexts) -> tuple[str, RulesetTexts]:
    """The last known record of `ruleset`, serialised, and its texts: the same text as
    `last_known.dumps` of `{"tenant_id", "flags", "segments"}` with each compiled definition's
    document and version.

    A definition whose compiled object is the one `held` holds (a catch-up keeps the unchanged ones)
    reuses its text (`evaluation.texts`); the others are serialised. A write to a 10,000-flag tenant
    then costs one flag's serialisation and a join, not the tenant's (230-350 ms in the request that
    caught up, measured in the load test of 2026-12-01).
    """
    texts = RulesetTexts(
        flags=texts_of(ruleset.flags, held.flags, _kept_text),
        segments=texts_of(ruleset.segments, held.segments, _kept_text),
    )
    flags, segments = ",".join(texts.flags.texts), ",".join(texts.segments.texts)
    body = f'{{"tenant_id":{last_known.dumps(tenant_id)},"flags":[{flags}],"segments":[{segments}]}}'
    return body, texts


def _without_replaced(texts: RulesetTexts, ruleset: CompiledRuleset, changes: CatchUp) -> RulesetTexts:
    """`texts` less the compiled objects a catch-up replaced: a worker that does not write the next
    record (another was first) must not keep old compiled objects alive through them."""
    return RulesetTexts(
        # A changed segment recompiles the flags using it: then every flag is looked at.
        flags=releasing(texts.flags, ruleset.flags, None if changes.segments else changes.flags),
        segments=releasing(texts.segments, ruleset.segments, changes.segments),
    )


def _keep_text(tenant: Tenant, version: int, body: str) -> None:
    """Keep `body` as `version` unless a newer version is kept, or the database says otherwise.

    A kept version newer than the database's is wrong (the database was restored from a backup, or
    another installation wrote it): the database wins, and the kept record is replaced.
    """
    held = last_known.save_text(tenant.slug, last_known.RULESET, body, version=version)
    if held is None or held <= version:
        return
    try:
        current = Tenant.objects.filter(pk=tenant.pk).values_list("ruleset_version", flat=True).first()
    except DatabaseError:
        return
    if current is not None and current < held:
        logger.warning(
            "the last known ruleset is newer than the database's; replaced",
            extra={"tenant": tenant.slug, "kept": held, "database": current},
        )
        last_known.save_text(tenant.slug, last_known.RULESET, body, version=version, replace=True)


def usable_documents(
    flags: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The documents that compile: a stored flag or segment that no longer validates must not take the
    tenant down, so it is left out, loudly. A skipped segment takes the flags that refer to it along
    (they fail validation below). The compiled ruleset and the snapshot (`evaluation.snapshot`) both
    hold exactly these, so the SDK evaluates what the server does.
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
    segment_keys = {segment["key"] for segment in valid_segments}
    valid = []
    for flag in flags:
        try:
            validate_flag({k: v for k, v in flag.items() if k != "version"}, segment_keys=segment_keys)
            valid.append(flag)
        except DefinitionError as exc:
            logger.error(
                "stored flag does not compile; it is left out", extra={"flag": flag["key"], "error": str(exc)}
            )
    return valid, valid_segments


def _weight(entry: _Entry) -> int:
    """What an entry counts against `RULESET_CACHE_MAX_FLAGS`: its compiled flags (at least 1)."""
    return max(1, len(entry.ruleset.flags))


class RulesetCache:
    def __init__(self) -> None:
        # Least recently used first. Reads (`get`) need no lock; changes of the order take `_guard`.
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._flags = 0  # the sum of `_weight` over the entries
        self._refused: dict[int, int | None] = {}  # per tenant, a kept version that could not be restored
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self.warmed = False
        self.news = version_news.Listener(self.heard)

    def get(self, tenant: Tenant) -> CompiledRuleset:
        entry = self._entries.get(tenant.pk)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < settings.RULESET_CHECK_INTERVAL:
            metrics.CACHE_HITS.inc()
            return entry.ruleset
        # Recency is recorded here, once per check interval, not on every hit: the hot path stays a
        # dict read, and a tenant used in the last interval is at most one interval behind in the order.
        self._touch(tenant.pk)
        self.news.ensure_started()
        try:
            shared = read_shared_version(tenant.pk)
            # `>=`: a ruleset newer than the shared version is current too (a catch-up reads the
            # outbox past the version asked for; two publishes may land in the wrong order and leave
            # Redis behind until a write or the expiry). Asking again on every request until then
            # cost a Redis read, and a database query whenever the key was missing, per request.
            if entry is not None and entry.confirmed and entry.version >= shared:
                entry.checked_at = now
                metrics.CACHE_HITS.inc()
                return entry.ruleset
            return self._compile(tenant, shared)
        except RulesetUnavailable:
            if entry is not None:
                metrics.CACHE_STALE_SERVES.inc()
                return entry.ruleset
            raise
        except DatabaseError:
            ruleset = self._without_database(tenant)
            if ruleset is None:
                raise
            metrics.CACHE_STALE_SERVES.inc()
            return ruleset

    def _compile(self, tenant: Tenant, version: int) -> CompiledRuleset:
        with self._lock_for(tenant.pk):
            entry = self._entries.get(tenant.pk)
            if entry is not None and entry.confirmed and entry.version >= version:
                return entry.ruleset
            metrics.CACHE_MISSES.inc()
            if entry is not None and entry.confirmed and entry.whole:
                caught_up = self._catch_up(tenant, entry, version)
                if caught_up is not None:
                    self._store(tenant.pk, caught_up)
                    keep_last_known_compiled(tenant, caught_up)
                    return caught_up.ruleset
            flags, segments = ruleset_documents(tenant)
            ruleset, whole = _compile_whole(tenant, version, flags, segments)
            stored = _Entry(ruleset=ruleset, version=version, checked_at=time.monotonic(), whole=whole)
            self._store(tenant.pk, stored)
        # Every document compiled (the usual case): keep them as compiled, with texts for the next write.
        keep_last_known(tenant, version, flags, segments, stored if whole else None)
        return ruleset

    @staticmethod
    def _catch_up(tenant: Tenant, entry: _Entry, version: int) -> _Entry | None:
        """The entry brought up to `version` (or later) by applying only what changed; `None` when
        only a full compile can be trusted."""
        changes = changes_since(tenant, entry.version, version)
        if changes is None:
            return None
        try:
            ruleset = catch_up(tenant, entry.ruleset, changes)
        except DefinitionError:
            return None  # a stored definition that does not compile: the full compile leaves it out
        return _Entry(
            ruleset=ruleset,
            version=changes.version,
            checked_at=time.monotonic(),
            texts=_without_replaced(entry.texts, ruleset, changes),
        )

    def _store(self, tenant_id: int, entry: _Entry) -> None:
        """Keep `entry` as the most recently used; drop the least recently used tenants past the cap."""
        with self._guard:
            old = self._entries.pop(tenant_id, None)
            if old is not None:
                self._flags -= _weight(old)
            self._entries[tenant_id] = entry
            self._flags += _weight(entry)
            cap = settings.RULESET_CACHE_MAX_FLAGS
            while cap and self._flags > cap and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._flags -= _weight(dropped)
                metrics.CACHE_EVICTIONS.inc()

    def _touch(self, tenant_id: int) -> None:
        with self._guard:
            if tenant_id in self._entries:
                self._entries.move_to_end(tenant_id)

    @property
    def compiled_flags(self) -> int:
        """The compiled flags this process holds, as counted against `RULESET_CACHE_MAX_FLAGS`."""
        return self._flags

    def _without_database(self, tenant: Tenant) -> CompiledRuleset | None:
        """The database cannot be read: the newest of this process's ruleset and the last known one.

        Checked again after `RULESET_CHECK_INTERVAL`, not on every request.
        """
        with self._lock_for(tenant.pk):
            entry = self._entries.get(tenant.pk)
            held = last_known.stored_version(tenant.slug, last_known.RULESET)
            newer = held is not None and (entry is None or held > entry.version)
            if newer and self._refused.get(tenant.pk) != held:
                restored = self._restore(tenant)
                if restored is not None:
                    entry = restored
                else:
                    self._refused[tenant.pk] = held  # said once in the log, not every interval
            if entry is None:
                return None
            entry.checked_at = time.monotonic()
            return entry.ruleset

    def _restore(self, tenant: Tenant) -> _Entry | None:
        record = last_known.load(tenant.slug, last_known.RULESET)
        if record is None or record.version is None:
            return None
        data = record.data
        if data.get("tenant_id") != tenant.pk:
            logger.warning(
                "the last known ruleset is another tenant's of that name; ignored",
                extra={"tenant": tenant.slug},
            )
            return None
        entry = self._entries.get(tenant.pk)
        if entry is not None and entry.version >= record.version:
            return None
        try:
            ruleset = compile_documents(tenant, record.version, list(data["flags"]), list(data["segments"]))
        except Exception:
            logger.exception(
                "the last known ruleset does not compile; ignored", extra={"tenant": tenant.slug}
            )
            return None
        restored = _Entry(
            ruleset=ruleset, version=record.version, checked_at=time.monotonic(), confirmed=False
        )
        self._store(tenant.pk, restored)
        logger.warning(
            "database unreachable: serving the last known ruleset",
            extra={"tenant": tenant.slug, "version": record.version, "saved_at": record.saved_at},
        )
        return restored

    def _lock_for(self, tenant_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    def forget(self, tenant_id: int) -> None:
        entry = self._entries.get(tenant_id)
        if entry is not None:
            entry.checked_at = float("-inf")

    def heard(self, tenant_id: int | None, version: int) -> None:
        """A version announced for a tenant (`version_news`): an entry older than it is checked on its
        next request. `None`: announcements may have been missed, so every entry is."""
        if tenant_id is None:
            for held in list(self._entries):
                self.forget(held)
            return
        entry = self._entries.get(tenant_id)
        if entry is not None and entry.version < version:
            self.forget(tenant_id)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
            self._flags = 0
        self._refused.clear()

    def held(self, tenant_id: int) -> CompiledRuleset | None:
        """The compiled ruleset this process holds for the tenant, as it is (no check, no compile)."""
        entry = self._entries.get(tenant_id)
        return entry.ruleset if entry is not None else None

    def is_warm(self, tenant_id: int) -> bool:
        return tenant_id in self._entries

    def warm_all(self) -> int:
        """Compile every active tenant; returns how many compiled.

        A tenant whose stored rules do not compile is logged and left cold: its own evaluations fail,
        but it must not make the whole process unready (and so take every other tenant down with it).
        The database being down does make it fail.
        """
        compiled = 0
        cap = settings.RULESET_CACHE_MAX_FLAGS
        for tenant in Tenant.objects.filter(is_active=True):
            if cap and self._flags >= cap:
                break  # the others would only push out the ones just compiled; they compile on demand
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
version_news.after_fork(RULESETS.news)
