"""The one transaction shape for every change to a tenant's ruleset (its flags and segments).

Every write service opens `ruleset_change(tenant)` first: it takes the per-tenant lock, lets the service
write, records what it wrote, and runs the ruleset checks on the stored state before the transaction
commits. A check that raises rolls the whole change back (versions and audit rows included).

Why a lock: two writers that each look valid alone can break the ruleset together (`DELETE` of a segment
racing a flag that starts to use it; `a → b` and `b → a` saved at once; an archive racing a new dependant).
With every ruleset-changing transaction holding the tenant's lock from its first statement to its commit,
the check always reads a state that no one else is changing. On PostgreSQL the lock is the tenant row
(`SELECT ... FOR UPDATE`, the row the audit chain already locks, so the lock order is the same everywhere);
on SQLite writes are serialised already (`BEGIN IMMEDIATE`, settings.py), and the check reads inside the
same transaction.

Changes nest: a service called inside another change of the same tenant (the importer applies many) joins
it, and only the outermost change runs the checks, once, on the final state: a valid import may pass
through invalid intermediate states (archive a prerequisite before its dependant) and is judged as a whole.

The checks are registered by the apps that own the rules (`flags` registers the reference check in its
`AppConfig.ready`), so `segments` need not import `flags` to refuse deleting a segment still in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenancy.models import Tenant


@dataclass
class RulesetChange:
    """What one ruleset transaction wrote: the keys of the flags and segments saved or removed."""

    tenant: Tenant
    flags: set[str] = field(default_factory=set)
    segments: set[str] = field(default_factory=set)
    version: int | None = None
    """The ruleset version this transaction bumped the tenant to (`next_ruleset_version`), if it did."""
    protect_new_flags: bool = False
    """The tenant's policy as the locked row holds it: read under the lock, so a flag created just after
    an owner turned it on is protected in every process, whatever a cached tenant says."""


RulesetCheck = Callable[[RulesetChange], None]

_checks: list[RulesetCheck] = []
_open_changes: ContextVar[dict[int, RulesetChange] | None] = ContextVar("open_ruleset_changes", default=None)


def register_ruleset_check(check: RulesetCheck) -> None:
    """Run `check` before every ruleset change commits; it raises to refuse the change."""
    if check not in _checks:
        _checks.append(check)


def lock_tenant(tenant_id: int) -> bool:
    """Hold the tenant's row lock until the transaction ends (a no-op on SQLite, serialised already).

    Returns the row's `protect_new_flags`, read with the lock (one query either way)."""
    locked = (
        Tenant.objects.select_for_update()
        .filter(pk=tenant_id)
        .values_list("protect_new_flags", flat=True)
        .first()
    )
    return bool(locked)


def holds_tenant_lock(tenant_id: int) -> bool:
    """Whether an open ruleset change of this context holds the tenant's row lock: taken when it
    began and held until its transaction ends, which ends every write nested in it too.

    Locking the row again inside the change costs more than a query on PostgreSQL: each lock taken in
    a savepoint (an import writes each flag in one) adds the savepoint to the row's lockers, a new
    multixact holding all the earlier ones, so N writes cost N x N.
    """
    return tenant_id in (_open_changes.get() or {})


def next_ruleset_version(tenant_id: int) -> int:
    """Bump the tenant's ruleset version inside the change's transaction and return the new value.

    The caller holds the tenant's row lock (`lock_tenant`; the audit chain takes it too), so versions
    follow the commit order and the version a change event names is the one that includes the change.
    Readers in other processes see it with the change or not at all: it commits with it. The moment
    is kept with it, so that everything made from one version (a snapshot's `generated_at`) is the
    same in every process.

    Inside a ruleset change (`ruleset_change`) the tenant is bumped once: every event of the transaction
    (an import writes thousands) names that one version, which includes them all, as they commit
    together. Bumping the row once per event made PostgreSQL keep one row version per bump inside the
    transaction, and every later read of the row, and each deferred foreign-key check against it at
    commit, walked that chain: an import of 10,000 flags took over half an hour, most of it in COMMIT.
    The bump is reused only while the row still holds it (a savepoint rolled back may have undone it;
    the change holds the row's lock, so nobody else moves it).
    """
    change = (_open_changes.get() or {}).get(tenant_id)
    if change is not None and change.version is not None:
        current = Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).get()
        if current == change.version:
            return int(current)
    Tenant.objects.filter(pk=tenant_id).update(
        ruleset_version=F("ruleset_version") + 1, ruleset_changed_at=timezone.now()
    )
    version = int(Tenant.objects.filter(pk=tenant_id).values_list("ruleset_version", flat=True).get())
    if change is not None:
        change.version = version
    return version


@contextmanager
def ruleset_change(tenant: Tenant) -> Iterator[RulesetChange]:
    """A transaction that changes `tenant`'s ruleset: locked from the start, checked before commit."""
    open_changes = _open_changes.get() or {}
    joined = open_changes.get(tenant.pk)
    if joined is not None:
        with transaction.atomic():
            yield joined
        return
    with transaction.atomic():
        change = RulesetChange(tenant=tenant, protect_new_flags=lock_tenant(tenant.pk))
        token = _open_changes.set({**open_changes, tenant.pk: change})
        try:
            yield change
        finally:
            _open_changes.reset(token)
        if change.flags or change.segments:
            for check in _checks:
                check(change)
