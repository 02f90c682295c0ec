"""The life of a change request after the gate opened it: edit, approve, reject, apply (api.md, Safe change).

One service per use case, like `flags.services`; the API (`flags.api.change_requests`) and the admin
(`flags.admin.change_requests`) call these. Each takes the tenant's lock first (the order every ruleset
write and the audit chain use), then the request's row.

- Another actor: approvals compare actor strings (`client:<client_id>`, `user:<username>`). The author
  never approves their own request (403 `self_approval`); one approval by anyone else is enough.
- Editing the proposal (the author only) re-validates it with the engine and clears the approvals.
- Applying (once approved) checks the base version under the flag's lock (412 with the current version)
  and writes through the same public service the gate stopped, inside `approvals.applying(flag)`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditAction
from audit.records import audit_event, audit_record
from flags import approvals, services
from flags.attributes import split_attributes
from flags.models import (
    FLAG_ATTRIBUTE_FIELDS,
    FLAG_CONTENT_FIELDS,
    ChangeRequest,
    ChangeRequestKind,
    ChangeRequestStatus,
    Flag,
)
from flags.rollouts.models import ROLLOUT_ACTOR
from flags.rollouts.services import rollout_change_request_decided
from kernel.context import acting_as
from kernel.errors import ApiError, Conflict, InsufficientScope, Invalid, NotFound, PreconditionFailed
from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.ruleset import lock_tenant, ruleset_change

EDITABLE_FIELDS = frozenset(FLAG_CONTENT_FIELDS) | frozenset(FLAG_ATTRIBUTE_FIELDS) | {"protected"}


class SelfApproval(ApiError):
    status, code = 403, "self_approval"
    default_message = "The author of a change request cannot approve it: another person must."


class NotAuthor(ApiError):
    status, code = 403, "not_author"
    default_message = "Only the author of a change request may edit it."


def change_request_list(
    *, tenant: Tenant | int, status: str | None = None, flag_key: str | None = None
) -> QuerySet[ChangeRequest]:
    qs: QuerySet[ChangeRequest] = ChangeRequest.objects.for_tenant(tenant).all()
    if status:
        qs = qs.filter(status=status)
    if flag_key:
        qs = qs.filter(flag_key=flag_key)
    return qs.order_by("-id")


def change_request_get(*, tenant: Tenant | int, cr_id: int) -> ChangeRequest:
    cr = ChangeRequest.objects.for_tenant(tenant).filter(pk=cr_id).first()
    if cr is None:
        raise NotFound(f"No change request {cr_id} in this tenant.")
    return cr


def _locked(tenant: Tenant, cr_id: int) -> ChangeRequest:
    cr = ChangeRequest.objects.for_tenant(tenant).select_for_update().filter(pk=cr_id).first()
    if cr is None:
        raise NotFound(f"No change request {cr_id} in this tenant.")
    return cr


def _refuse_closed(cr: ChangeRequest, doing: str) -> None:
    if not cr.is_open:
        raise Conflict(
            f"Change request #{cr.pk} is {cr.status}; it cannot be {doing}.",
            details={"status": cr.status},
        )


def _audit(cr: ChangeRequest, action: str, before: dict[str, Any] | None, *, event: bool = True) -> None:
    after = approvals.change_request_document(cr)
    if event:
        version = cr.applied_version if action == AuditAction.APPLY else cr.base_version
        audit_event(
            tenant_id=cr.tenant_id,
            entity="change_request",
            key=str(cr.pk),
            action=action,
            version=version,
            before=before,
            after=after,
        )
    else:
        audit_record(
            tenant_id=cr.tenant_id,
            entity="change_request",
            key=str(cr.pk),
            action=action,
            before=before,
            after=after,
        )


def change_request_edit(*, tenant: Tenant, cr_id: int, proposed: Any, actor: str) -> ChangeRequest:
    """The author changes some fields of the proposal; it is validated again and its approvals cleared."""
    if not isinstance(proposed, dict):
        raise Invalid({"proposed": ['An object of the flag fields to change, e.g. {"state": "on"}.']})
    unknown = sorted(str(name) for name in proposed if name not in EDITABLE_FIELDS)
    if unknown:
        raise Invalid(
            {f"proposed.{name[:64]}": ["Not a field a change request can change."] for name in unknown[:20]}
        )
    with acting_as(actor), transaction.atomic():
        lock_tenant(tenant.pk)
        cr = _locked(tenant, cr_id)
        if cr.author != actor:
            raise NotAuthor(
                f"Only {cr.author} may edit change request #{cr.pk}; open your own by changing the flag."
            )
        _refuse_closed(cr, "edited")
        if cr.kind != ChangeRequestKind.UPDATE:
            raise Invalid(
                {"proposed": [f"A {cr.kind} request has nothing to edit; reject it or open another."]}
            )
        fields = {
            field: [f"`{field}` cannot change (it is {cr.proposed.get(field)!r})."]
            for field in ("key", "type")
            if field in proposed and proposed[field] != cr.proposed.get(field)
        }
        if fields:
            raise Invalid({f"proposed.{field}": problems for field, problems in fields.items()})
        merged = {k: v for k, v in {**cr.proposed, **proposed}.items() if k != "archived"}
        protected = merged.pop("protected", True)
        if not isinstance(protected, bool):
            raise Invalid({"proposed.protected": ["Use true or false."]})
        content = services.flag_validate(tenant=tenant, data=merged)
        _, attributes = split_attributes(merged)
        before = approvals.change_request_document(cr)
        cr.proposed = approvals.flag_state_document(
            content, attributes=attributes, protected=protected, archived=False
        )
        cr.approvals = []
        cr.status = ChangeRequestStatus.PENDING
        cr.save()
        _audit(cr, AuditAction.EDIT, before, event=False)
        return cr


def change_request_approve(*, tenant: Tenant, cr_id: int, actor: str) -> ChangeRequest:
    """Another actor approves: one approval other than the author's makes the request `approved`."""
    with acting_as(actor), transaction.atomic():
        lock_tenant(tenant.pk)
        cr = _locked(tenant, cr_id)
        if cr.author == actor:
            raise SelfApproval(details={"author": cr.author})
        _refuse_closed(cr, "approved")
        if any(approval.get("actor") == actor for approval in cr.approvals):
            return cr
        before = approvals.change_request_document(cr)
        cr.approvals = [*cr.approvals, {"actor": actor, "at": iso(timezone.now())}]
        cr.status = ChangeRequestStatus.APPROVED
        cr.save()
        _audit(cr, AuditAction.APPROVE, before)
        return cr


def change_request_reject(
    *, tenant: Tenant, cr_id: int, actor: str, may_reject_others: bool = True
) -> ChangeRequest:
    """Close the request unapplied. The author may withdraw theirs; others need the right to approve."""
    with acting_as(actor), transaction.atomic():
        lock_tenant(tenant.pk)
        cr = _locked(tenant, cr_id)
        if cr.author != actor and not may_reject_others:
            raise InsufficientScope(
                "Rejecting another actor's change request needs the `flags:approve` scope."
            )
        _refuse_closed(cr, "rejected")
        before = approvals.change_request_document(cr)
        cr.status = ChangeRequestStatus.REJECTED
        cr.decided_by = actor
        cr.save()
        _audit(cr, AuditAction.REJECT, before)
        if cr.author == ROLLOUT_ACTOR:
            rollout_change_request_decided(tenant=tenant, flag=cr.flag, cr_id=cr.pk, applied=False)
        return cr


def change_request_apply(*, tenant: Tenant, cr_id: int, actor: str) -> tuple[ChangeRequest, Flag]:
    """Write an approved proposal as a new version of the flag, audited as `actor` (the applier).

    Under the tenant's lock and the request's row lock, so of two concurrent applies exactly one writes;
    the other finds it applied (409). A flag that moved since the request was opened → 412.
    """
    with acting_as(actor), ruleset_change(tenant):
        cr = _locked(tenant, cr_id)
        if cr.status != ChangeRequestStatus.APPROVED:
            hint = {
                ChangeRequestStatus.PENDING: "it needs another person's approval first",
                ChangeRequestStatus.APPLIED: f"it was applied already (version {cr.applied_version})",
                ChangeRequestStatus.REJECTED: "it was rejected",
            }.get(ChangeRequestStatus(cr.status), cr.status)
            raise Conflict(
                f"Change request #{cr.pk} cannot be applied: {hint}.", details={"status": cr.status}
            )
        flag = Flag.objects.for_tenant(tenant).select_for_update().filter(pk=cr.flag_id).first()
        if flag is None:  # pragma: no cover - a flag is never hard-deleted while requests refer to it
            raise NotFound(f"The flag of change request #{cr.pk} is gone.")
        if flag.version != cr.base_version:
            raise PreconditionFailed(
                f"Flag {flag.key!r} is at version {flag.version}, not {cr.base_version} as when change "
                f"request #{cr.pk} was opened; change the flag again to open a new proposal.",
                details={"current_version": flag.version, "base_version": cr.base_version},
            )
        with approvals.applying(flag, author=cr.author):
            written = _write(tenant, cr, flag)
        before = approvals.change_request_document(cr)
        cr.status = ChangeRequestStatus.APPLIED
        cr.decided_by = actor
        cr.applied_version = written.version
        cr.save()
        _audit(cr, AuditAction.APPLY, before)
        if cr.author == ROLLOUT_ACTOR:
            rollout_change_request_decided(tenant=tenant, flag=flag, cr_id=cr.pk, applied=True)
        return cr, written


def _write(tenant: Tenant, cr: ChangeRequest, flag: Flag) -> Flag:
    """The public write service whose gate opened the request, with the gate satisfied."""
    if cr.kind == ChangeRequestKind.ARCHIVE:
        return services.flag_archive(tenant=tenant, key=flag.key, expected_version=cr.base_version)
    if cr.kind == ChangeRequestKind.RESTORE:
        return services.flag_restore(tenant=tenant, key=flag.key)
    if cr.kind == ChangeRequestKind.ROLLBACK and cr.rollback_version is not None:
        return services.flag_rollback(tenant=tenant, key=flag.key, version=cr.rollback_version)
    data = {k: v for k, v in cr.proposed.items() if k != "archived"}
    return services.flag_update(
        tenant=tenant, key=flag.key, data=data, expected_version=cr.base_version, partial=False
    )
