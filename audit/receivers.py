"""Every save or delete of a versioned tenant entity writes one audit entry and one change event.

These receivers run inside the transaction of the change (VersionedTenantEntity.save/delete open one), so
the entity, its audit entry and its event commit or roll back together, whatever the write path.
The actor and request id come from `kernel.context`.

Who may do what is audited too: a membership added, changed or removed (entity `membership`, keyed by
username) and a tenant's name or active flag changed (entity `tenant`). These change nothing that
evaluation serves, so they write an audit entry and no change event.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from audit.chain import GENESIS, entry_content, entry_hash
from audit.diff import document_diff
from audit.models import AuditAction, AuditEntry, ChangeEvent
from audit.outbox import announce_after_commit
from kernel import context
from tenancy.entities import VersionedTenantEntity
from tenancy.models import Membership, Tenant
from tenancy.ruleset import holds_tenant_lock, next_ruleset_version

ACTION_HINT = "_audit_action"
BEFORE = "_audit_before"


def set_audit_action(instance: VersionedTenantEntity, action: str) -> None:
    """Services name actions that cannot be inferred from the row alone (rollback)."""
    setattr(instance, ACTION_HINT, action)


@receiver(pre_save, dispatch_uid="audit_remember_before")
def remember_before(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    if not isinstance(instance, VersionedTenantEntity) or instance._state.adding:
        return
    if BEFORE not in instance.__dict__:
        stored = type(instance)._base_manager.filter(pk=instance.pk).first()
        instance.__dict__[BEFORE] = stored.to_document() if stored is not None else None


@receiver(post_save, dispatch_uid="audit_write_on_save")
def write_on_save(sender: type[Any], instance: Any, created: bool, **kwargs: Any) -> None:
    if not isinstance(instance, VersionedTenantEntity) or kwargs.get("raw"):
        return
    before = None if created else instance.__dict__.pop(BEFORE, None)
    after = instance.to_document()
    action = instance.__dict__.pop(ACTION_HINT, None) or _infer_action(created, before, after)
    _append(instance, action, before, after)


@receiver(post_delete, dispatch_uid="audit_write_on_delete")
def write_on_delete(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    if not isinstance(instance, VersionedTenantEntity):
        return
    action = instance.__dict__.pop(ACTION_HINT, None) or AuditAction.DELETE
    _append(instance, action, instance.to_document(), None)


def _infer_action(created: bool, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    if created:
        return AuditAction.CREATE
    was_archived = bool(before and before.get("archived_at"))
    is_archived = bool(after.get("archived_at"))
    if is_archived and not was_archived:
        return AuditAction.ARCHIVE
    if was_archived and not is_archived:
        return AuditAction.RESTORE
    return AuditAction.UPDATE


def _append(
    instance: VersionedTenantEntity, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    """The audit entry, the ruleset version that includes the change, and the change event.

    `_append_entry` takes the tenant's row lock first, and it is held until commit: the version bump
    and the event's id (its cursor) are therefore in commit order within the tenant (ADR 0012).
    """
    entry = _append_entry(
        instance.tenant_id, instance.entity_name, instance.key, action, instance.version, before, after
    )
    if action in EVENT_OF_THE_WHOLE:
        return  # a kill switch writes one event for all its flags (audit.records.audit_tenant_event)
    if action in NO_EVENT:
        return
    _append_event(entry)


EVENT_OF_THE_WHOLE = frozenset({AuditAction.KILL, AuditAction.UNKILL})
"""Per-flag actions whose change event is the one event of the whole operation (api.md, Safe change:
"one `killswitch.engaged` event"); their audit entries are written as for any change."""

NO_EVENT = frozenset({AuditAction.PURGE})
"""Actions that change nothing evaluation serves and have no event type: a purge removes an archived
flag, which was no longer served (its `flag.archived` event said so when it happened)."""


def _append_event(entry: AuditEntry, *, ruleset_version: int | None = None) -> ChangeEvent:
    """The change event of `entry`, with the ruleset version that includes it (the tenant's row lock is
    held since `_append_entry`; given for a change that leaves the ruleset as it is), announced to the
    stream processes after commit."""
    event = ChangeEvent.objects.for_tenant(entry.tenant_id).create(
        tenant_id=entry.tenant_id,
        ts=entry.ts,
        entity=entry.entity,
        entity_key=entry.entity_key,
        action=entry.action,
        version=entry.version,
        ruleset_version=(
            next_ruleset_version(entry.tenant_id) if ruleset_version is None else ruleset_version
        ),
        audit_entry=entry,
    )
    announce_after_commit(entry.tenant_id)
    return event


def _append_entry(
    tenant_id: int,
    entity: str,
    entity_key: str,
    action: str,
    version: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    # The tenant row lock serialises the chain: one appender at a time per tenant. A ruleset change
    # holds it already, for its whole transaction (`holds_tenant_lock` says why not to take it again).
    if not holds_tenant_lock(tenant_id):
        Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk", flat=True).first()
    last = AuditEntry.objects.for_tenant(tenant_id).order_by("-seq").values_list("seq", "entry_hash").first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = AuditEntry(
        tenant_id=tenant_id,
        seq=seq,
        ts=timezone.now(),
        actor=context.actor(),
        entity=entity,
        entity_key=entity_key,
        action=action,
        version=version,
        before=before,
        after=after,
        diff=document_diff(before, after),
        request_id=context.request_id(),
        reason=context.reason() or "",
        prev_hash=prev_hash,
    )
    entry.entry_hash = entry_hash(prev_hash, entry_content(entry))
    entry.save()
    return entry


# Memberships and tenants ------------------------------------------------------------------------


def _membership_document(membership: Membership) -> dict[str, Any]:
    return {"person": membership.user.get_username(), "role": membership.role}


def _tenant_document(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "is_active": tenant.is_active,
        "require_change_reason": tenant.require_change_reason,
        "protect_new_flags": tenant.protect_new_flags,
    }


def _stored(instance: Membership | Tenant) -> Any:
    return type(instance)._base_manager.filter(pk=instance.pk).first()


@receiver(pre_save, sender=Membership, dispatch_uid="audit_membership_before")
@receiver(pre_save, sender=Tenant, dispatch_uid="audit_tenant_before")
def remember_tenancy_before(sender: type[Any], instance: Membership | Tenant, **kwargs: Any) -> None:
    if kwargs.get("raw") or instance._state.adding or instance.pk is None:
        return
    stored = _stored(instance)
    if stored is None:
        return
    render = _tenant_document if isinstance(instance, Tenant) else _membership_document
    instance.__dict__[BEFORE] = render(stored)


@receiver(post_save, sender=Membership, dispatch_uid="audit_membership_saved")
def write_membership_saved(sender: type[Any], instance: Membership, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    before = None if created else instance.__dict__.pop(BEFORE, None)
    after = _membership_document(instance)
    if before == after:
        return
    action = AuditAction.CREATE if created else AuditAction.UPDATE
    _append_entry(instance.tenant_id, "membership", after["person"], action, None, before, after)


@receiver(post_delete, sender=Membership, dispatch_uid="audit_membership_deleted")
def write_membership_deleted(sender: type[Any], instance: Membership, **kwargs: Any) -> None:
    if isinstance(kwargs.get("origin"), Tenant):
        return  # the tenant itself is going: there is no chain left to write to
    before = _membership_document(instance)
    _append_entry(instance.tenant_id, "membership", before["person"], AuditAction.DELETE, None, before, None)


@receiver(post_save, sender=Tenant, dispatch_uid="audit_tenant_saved")
def write_tenant_saved(sender: type[Any], instance: Tenant, created: bool, **kwargs: Any) -> None:
    """A tenant's creation starts its chain empty; later changes of its name or state are entries."""
    if kwargs.get("raw") or created:
        return
    before = instance.__dict__.pop(BEFORE, None)
    after = _tenant_document(instance)
    if before is None or before == after:
        return
    _append_entry(instance.pk, "tenant", instance.slug, AuditAction.UPDATE, None, before, after)
