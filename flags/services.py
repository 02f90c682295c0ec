"""Writes of flags: one function per use case (style.md). The API, the admin and the commands call these.

Each runs in one ruleset transaction (`tenancy.ruleset.ruleset_change`): take the tenant's lock,
validate the document with the engine (the same definition of a valid flag as the SDK), lock the row,
check the expected version, save. Saving bumps `version`; the receivers store the FlagVersion, the audit
entry and the change event in the same transaction, and invalidate the tenant's compiled ruleset after
commit. Before the commit, the ruleset check (`flags.integrity.ruleset_check`) validates what was written
against the stored ruleset (segments, prerequisites, cycles) and refuses a change that breaks a live flag.

Four eyes (ADR 0015): every public write of an existing flag calls the change-request gate
(`flags.approvals.gate`) under the row lock, once, just before it writes. For a protected flag nothing is
written: a change request is opened and `ApprovalRequired` raised after the transaction block (so the
request is kept). The gate lives here and only here; a lower-level step below it (the kill switch's) skips it.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from flagsvc_sdk.engine import MAX_SAFE_INTEGER, validate_flag

from audit.models import AuditAction
from audit.receivers import set_audit_action
from audit.records import audit_record
from flags import approvals, selectors
from flags.attributes import split_attributes
from flags.models import (
    FLAG_ATTRIBUTE_FIELDS,
    FLAG_CONTENT_FIELDS,
    FLAG_READ_ONLY_FIELDS,
    Flag,
    PurgedFlagKey,
)
from flags.rollouts.services import check_rollout_conflict
from flags.tracing import flag_write_span
from kernel.context import acting_as
from kernel.documents import same_document
from kernel.errors import Conflict, FlagNotFound, Invalid, NotFound
from segments.selectors import segment_keys
from tenancy.models import Tenant
from tenancy.ruleset import ruleset_change
from tenancy.versioning import check_version

IMMUTABLE_FIELDS = ("key", "type")


def flag_validate(*, tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    """Dry run of the validation a write applies, references included (the admin form's `clean()`).

    Reads without the lock: the write itself checks again, under it.
    """
    split_attributes(data)  # kill_category: checked here, outside the engine (flags.attributes)
    content = _content_of(data)
    own_key = content.get("key")
    live_flags = {k: v for k, v in selectors.live_flag_graph(tenant=tenant).items() if k != own_key}
    return validate_flag(content, segment_keys=segment_keys(tenant=tenant), live_flags=live_flags)


def _content_of(data: dict[str, Any]) -> dict[str, Any]:
    """The engine's part of the caller's document: without the read-only fields the API documents but
    ignores, the attributes outside the engine (`split_attributes` reads those) and `protected`."""
    outside = (*FLAG_READ_ONLY_FIELDS, *FLAG_ATTRIBUTE_FIELDS, "protected", "reuse_key")
    return {k: v for k, v in data.items() if k not in outside}


def _protected_of(data: dict[str, Any]) -> bool | None:
    """`protected` of a write (four eyes, flags/approvals.py): a boolean, or None when absent (unchanged)."""
    value = data.get("protected")
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Invalid({"protected": ["Use true or false."]})
    return value


def _born_protected(tenant: Tenant, protected: bool | None, *, policy: bool) -> bool:
    """Whether a new flag is protected: as the write says, or, where the tenant protects every new
    flag (`Tenant.protect_new_flags`, read under the tenant's lock), always; saying `false` there is
    refused, since unprotecting is itself a change that needs approval."""
    if not policy:
        return bool(protected)
    if protected is False:
        raise Invalid(
            {
                "protected": [
                    f"Tenant {tenant.slug!r} protects every new flag: leave `protected` out or send true. "
                    "Unprotecting the flag later is a change that needs another person's approval."
                ]
            }
        )
    return True


def _locked(tenant: Tenant, key: str, *, include_archived: bool = False) -> Flag:
    qs = selectors.flag_queryset(tenant=tenant, include_archived=include_archived)
    flag = qs.select_for_update().filter(key=key).first()
    if flag is None:
        raise FlagNotFound(f"No flag {key!r} in this tenant.")
    return flag


def _reuse_key_of(data: dict[str, Any]) -> bool:
    """`reuse_key` of a create: true to take the key of an archived flag (api.md); absent = false."""
    value = data.get("reuse_key", False)
    if not isinstance(value, bool):
        raise Invalid({"reuse_key": ["Use true or false."]})
    return value


def tombstone_key(flag: Flag) -> str:
    """The key an archived flag keeps when its key is reused: `~<id>~<key>`, unique and outside the
    keys a caller may choose (they start with a letter or digit)."""
    return f"~{flag.pk}~{flag.key}"[:128]


def _release_key(tenant: Tenant, archived: Flag) -> None:
    """Free an archived flag's key for a new flag (`"reuse_key": true`): the archived flag is renamed to
    its tombstone key (its versions and audit entries stay, under the old key), and an audit entry
    `reuse_key` under the reused key records it. A rename only: no version, no change event (an
    archived flag serves nothing), hence the bare row update rather than the versioned save."""
    before = archived.to_document()
    tombstone = tombstone_key(archived)
    Flag._base_manager.filter(pk=archived.pk).update(key=tombstone)
    audit_record(
        tenant_id=tenant.pk,
        entity="flag",
        key=archived.key,
        action=AuditAction.REUSE_KEY,
        before=before,
        after={**before, "key": tombstone},
    )


def _take_purged_key(tenant: Tenant, key: str, *, reuse_key: bool) -> None:
    """The key of a purged flag (flags.retention) is 409 `conflict` unless `reuse_key`; with it the
    reservation goes and an audit entry `reuse_key` under the key records it (before the `create`)."""
    purged = PurgedFlagKey.objects.for_tenant(tenant).filter(key=key).first()
    if purged is None:
        return
    if not reuse_key:
        raise Conflict(
            f"The key {key!r} belonged to a flag that was archived and then purged; choose another key, "
            'or send "reuse_key": true to give the key to a new flag.',
            details={"key": key, "purged": True},
        )
    before = {**purged.to_document(), "purged": True}
    purged.delete()
    audit_record(
        tenant_id=tenant.pk, entity="flag", key=key, action=AuditAction.REUSE_KEY, before=before, after=None
    )


@flag_write_span("create")  # `flag.update` when tracing is on (flags/tracing.py)
def flag_create(*, tenant: Tenant, actor: str | None = None, data: dict[str, Any]) -> tuple[Flag, bool]:
    """Create a flag; the same key with the same body again returns the existing one (created=False).

    The document alone is validated here; its references (segments, prerequisites) by the ruleset
    check, under the tenant's lock. The key of an archived flag is 409 `conflict` unless the body says
    `"reuse_key": true`: then the archived flag moves to its tombstone key (`_release_key`, audited).
    The key of a purged flag likewise (`_take_purged_key`).
    """
    _, attributes = split_attributes(data)
    content = validate_flag(_content_of(data))
    protected = _protected_of(data)
    reuse_key = _reuse_key_of(data)

    def new_flag() -> Flag:
        flag = Flag(tenant=tenant, protected=born_protected)
        flag.apply_content(content)
        flag.apply_attributes(attributes)
        return flag

    with acting_as(actor), ruleset_change(tenant) as change:
        born_protected = _born_protected(tenant, protected, policy=change.protect_new_flags)
        _take_purged_key(tenant, content["key"], reuse_key=reuse_key)
        flag = new_flag()
        try:
            with transaction.atomic():
                flag.save()
        except IntegrityError:
            existing = selectors.flag_get(tenant=tenant, key=content["key"], include_archived=True)
            if existing is None:
                raise
            if existing.is_archived and reuse_key:
                _release_key(tenant, existing)
                flag = new_flag()
                flag.save()
                change.flags.add(flag.key)
                return flag, True
        else:
            change.flags.add(flag.key)
            return flag, True
    if existing.is_archived:
        raise Conflict(
            f"The key {content['key']!r} belongs to an archived flag; restore it, choose another key, "
            'or send "reuse_key": true to give the key to a new flag.',
            details={"key": content["key"], "archived": True},
        )
    wanted_attributes = {**Flag(tenant=tenant).attributes(), **attributes}
    if (
        not same_document(existing.content(), content)
        or existing.attributes() != wanted_attributes
        or protected not in (None, existing.protected)
    ):
        raise Conflict(
            f"A flag with key {content['key']!r} already exists with a different definition.",
            details={"key": content["key"], "version": existing.version},
        )
    return existing, False


@flag_write_span("update")  # `flag.update` when tracing is on (flags/tracing.py)
def flag_update(
    *,
    tenant: Tenant,
    key: str,
    data: dict[str, Any],
    actor: str | None = None,
    expected_version: int | None = None,
    partial: bool = False,
    audit_action: str | None = None,
) -> Flag:
    """Full replace (PUT) or partial change (PATCH) of the mutable fields.

    `protected` absent keeps the flag's (PUT too: it is governance, not definition). A protected flag is
    not written: `ApprovalRequired` with the change request that holds the proposal (flags/approvals.py).
    `audit_action` names the change when it is not a plain update (a rollout step, ADR 0016).
    """
    body = _content_of(data)
    _, attributes = split_attributes(data)
    if not partial:  # a full replace without an attribute clears it
        attributes = {**Flag(tenant=tenant).attributes(), **attributes}
    protected = _protected_of(data)
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key)
        check_version(flag, expected_version)
        errors = {
            field: [f"`{field}` cannot change (it is {getattr(flag, field)!r})."]
            for field in IMMUTABLE_FIELDS
            if field in body and body[field] != getattr(flag, field)
        }
        if errors:
            raise Invalid(errors)
        base = flag.content() if partial else {"key": flag.key, "type": flag.type}
        content = validate_flag({**base, **body, "key": flag.key, "type": flag.type})
        protected = flag.protected if protected is None else protected
        attributes = {**flag.attributes(), **attributes}
        if (
            same_document(content, flag.content())
            and attributes == flag.attributes()
            and protected == flag.protected
        ):
            return flag
        # Rollouts (ADR 0016): a write to what an active plan drives is 409 `rollout_conflict`, before
        # the gate, so that a conflicting change does not wait in a change request.
        check_rollout_conflict(tenant=tenant, flag=flag, before=flag.content(), after=content)
        # Four eyes: the one gate (flags/approvals.py); None = write, else a change request was opened.
        opened = approvals.gate(
            flag,
            kind="update",
            proposed=approvals.flag_state_document(
                content, attributes=attributes, protected=protected, archived=False
            ),
        )
        if opened is None:
            flag.apply_content(content)
            flag.apply_attributes(attributes)
            flag.protected = protected
            if audit_action is not None:
                set_audit_action(flag, audit_action)
            flag.save()
            change.flags.add(flag.key)
            return flag
    raise approvals.ApprovalRequired(opened)  # after the block: the change request is kept


@flag_write_span("archive")  # `flag.update` when tracing is on (flags/tracing.py)
def flag_archive(
    *, tenant: Tenant, key: str, actor: str | None = None, expected_version: int | None = None
) -> Flag:
    """Archive (soft delete); refused with 409 `conflict` while live flags require it as a prerequisite."""
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key)
        check_version(flag, expected_version)
        opened = approvals.gate(  # four eyes (flags/approvals.py)
            flag,
            kind="archive",
            proposed=approvals.flag_state_document(
                flag.content(), attributes=flag.attributes(), protected=flag.protected, archived=True
            ),
        )
        if opened is None:
            flag.archived_at = timezone.now()
            flag.save()
            change.flags.add(flag.key)
            return flag
    raise approvals.ApprovalRequired(opened)  # after the block: the change request is kept


@flag_write_span("restore")  # `flag.update` when tracing is on (flags/tracing.py)
def flag_restore(*, tenant: Tenant, key: str, actor: str | None = None) -> Flag:
    """Un-archive. A live flag is returned unchanged (restoring twice is harmless).

    The restored flag is checked like a new one against the live ruleset: a prerequisite or segment that
    is gone → 422 at its field; a cycle → 409 `prerequisite_cycle`. Either way it stays archived.
    """
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key, include_archived=True)
        if not flag.is_archived:
            return flag
        opened = approvals.gate(  # four eyes (flags/approvals.py)
            flag,
            kind="restore",
            proposed=approvals.flag_state_document(
                flag.content(), attributes=flag.attributes(), protected=flag.protected, archived=False
            ),
        )
        if opened is None:
            flag.archived_at = None
            flag.save()
            change.flags.add(flag.key)
            return flag
    raise approvals.ApprovalRequired(opened)  # after the block: the change request is kept


@flag_write_span("rollback")  # `flag.update` when tracing is on (flags/tracing.py)
def flag_rollback(*, tenant: Tenant, key: str, version: int, actor: str | None = None) -> Flag:
    """Make version N's content current, as a new version (checked like any update)."""
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key)
        in_range = 0 < version <= MAX_SAFE_INTEGER  # others never existed (and overflow the column)
        stored = selectors.flag_version_get(tenant=tenant, flag=flag, version=version) if in_range else None
        if stored is None:
            raise NotFound(f"Flag {key!r} has no version {version}.", details={"version": version})
        old = {k: v for k, v in stored.document.items() if k in FLAG_CONTENT_FIELDS}
        content = validate_flag({**old, "key": flag.key, "type": flag.type})
        # Rollouts (ADR 0016): a rollback over what an active plan drives is 409 `rollout_conflict`.
        check_rollout_conflict(tenant=tenant, flag=flag, before=flag.content(), after=content)
        opened = approvals.gate(  # four eyes (flags/approvals.py); a rollback keeps `protected`
            flag,
            kind="rollback",
            proposed=approvals.flag_state_document(
                content, attributes=flag.attributes(), protected=flag.protected, archived=False
            ),
            rollback_version=version,
        )
        if opened is None:
            flag.apply_content(content)
            set_audit_action(flag, AuditAction.ROLLBACK)
            flag.save()
            change.flags.add(flag.key)
            return flag
    raise approvals.ApprovalRequired(opened)  # after the block: the change request is kept


def flag_protect(*, tenant: Tenant, key: str, actor: str | None = None) -> Flag:
    """Protect a flag (the admin's bulk action): a direct change, audited; every later change of it,
    unprotecting it too, needs another person's approval (flags/approvals.py)."""
    return flag_update(tenant=tenant, key=key, data={"protected": True}, actor=actor, partial=True)


def flag_set_state(*, tenant: Tenant, key: str, state: str, actor: str | None = None) -> Flag:
    """Turn a flag on or off (the admin's toggle actions)."""
    return flag_update(tenant=tenant, key=key, data={"state": state}, actor=actor, partial=True)
