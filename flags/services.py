"""Writes of flags: one function per use case (style.md). The API, the admin and the commands call these.

Each runs in one ruleset transaction (`tenancy.ruleset.ruleset_change`): take the tenant's lock,
validate the document with the engine (the same definition of a valid flag as the SDK), lock the row,
check the expected version, save. Saving bumps `version`; the receivers store the FlagVersion, the audit
entry and the change event in the same transaction, and invalidate the tenant's compiled ruleset after
commit. Before the commit, the ruleset check (`flags.integrity.ruleset_check`) validates what was written
against the stored ruleset (segments, prerequisites, cycles) and refuses a change that breaks a live flag.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from flagsvc_sdk.engine import validate_flag

from audit.models import AuditAction
from audit.receivers import set_audit_action
from flags import selectors
from flags.models import FLAG_CONTENT_FIELDS, FLAG_READ_ONLY_FIELDS, Flag
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
    content = _content_of(data)
    own_key = content.get("key")
    live_flags = {k: v for k, v in selectors.live_flag_graph(tenant=tenant).items() if k != own_key}
    return validate_flag(content, segment_keys=segment_keys(tenant=tenant), live_flags=live_flags)


def _content_of(data: dict[str, Any]) -> dict[str, Any]:
    """The caller's document without the read-only fields the API documents but ignores."""
    return {k: v for k, v in data.items() if k not in FLAG_READ_ONLY_FIELDS}


def _locked(tenant: Tenant, key: str, *, include_archived: bool = False) -> Flag:
    qs = selectors.flag_queryset(tenant=tenant, include_archived=include_archived)
    flag = qs.select_for_update().filter(key=key).first()
    if flag is None:
        raise FlagNotFound(f"No flag {key!r} in this tenant.")
    return flag


def flag_create(*, tenant: Tenant, actor: str | None = None, data: dict[str, Any]) -> tuple[Flag, bool]:
    """Create a flag; the same key with the same body again returns the existing one (created=False).

    The document alone is validated here; its references (segments, prerequisites) by the ruleset
    check, under the tenant's lock.
    """
    content = validate_flag(_content_of(data))
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = Flag(tenant=tenant)
        flag.apply_content(content)
        try:
            with transaction.atomic():
                flag.save()
        except IntegrityError:
            existing = selectors.flag_get(tenant=tenant, key=content["key"], include_archived=True)
            if existing is None:
                raise
        else:
            change.flags.add(flag.key)
            return flag, True
    if existing.is_archived:
        raise Conflict(
            f"The key {content['key']!r} belongs to an archived flag; restore it or choose another key.",
            details={"key": content["key"], "archived": True},
        )
    if not same_document(existing.content(), content):
        raise Conflict(
            f"A flag with key {content['key']!r} already exists with a different definition.",
            details={"key": content["key"], "version": existing.version},
        )
    return existing, False


def flag_update(
    *,
    tenant: Tenant,
    key: str,
    data: dict[str, Any],
    actor: str | None = None,
    expected_version: int | None = None,
    partial: bool = False,
) -> Flag:
    """Full replace (PUT) or partial change (PATCH) of the mutable fields."""
    body = _content_of(data)
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
        if same_document(content, flag.content()):
            return flag
        flag.apply_content(content)
        flag.save()
        change.flags.add(flag.key)
        return flag


def flag_archive(
    *, tenant: Tenant, key: str, actor: str | None = None, expected_version: int | None = None
) -> Flag:
    """Archive (soft delete); refused with 409 `conflict` while live flags require it as a prerequisite."""
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key)
        check_version(flag, expected_version)
        flag.archived_at = timezone.now()
        flag.save()
        change.flags.add(flag.key)
        return flag


def flag_restore(*, tenant: Tenant, key: str, actor: str | None = None) -> Flag:
    """Un-archive. A live flag is returned unchanged (restoring twice is harmless).

    The restored flag is checked like a new one against the live ruleset: a prerequisite or segment that
    is gone → 422 at its field; a cycle → 409 `prerequisite_cycle`. Either way it stays archived.
    """
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key, include_archived=True)
        if not flag.is_archived:
            return flag
        flag.archived_at = None
        flag.save()
        change.flags.add(flag.key)
        return flag


def flag_rollback(*, tenant: Tenant, key: str, version: int, actor: str | None = None) -> Flag:
    """Make version N's content current, as a new version (checked like any update)."""
    with acting_as(actor), ruleset_change(tenant) as change:
        flag = _locked(tenant, key)
        stored = selectors.flag_version_get(tenant=tenant, flag=flag, version=version)
        if stored is None:
            raise NotFound(f"Flag {key!r} has no version {version}.", details={"version": version})
        old = {k: v for k, v in stored.document.items() if k in FLAG_CONTENT_FIELDS}
        content = validate_flag({**old, "key": flag.key, "type": flag.type})
        flag.apply_content(content)
        set_audit_action(flag, AuditAction.ROLLBACK)
        flag.save()
        change.flags.add(flag.key)
        return flag


def flag_set_state(*, tenant: Tenant, key: str, state: str, actor: str | None = None) -> Flag:
    """Turn a flag on or off (the admin's toggle actions)."""
    return flag_update(tenant=tenant, key=key, data={"state": state}, actor=actor, partial=True)
