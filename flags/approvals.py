"""The change-request gate (four eyes, api.md "Safe change"; docs/adr/0015-the-change-request-gate.md).

`gate()` is called by every public write service of a flag (`flags.services.flag_update`, `flag_archive`,
`flag_restore`, `flag_rollback`; `flag_set_state` goes through `flag_update`) under the flag's row lock,
after the version check and validation and before the write. For a protected flag it writes nothing
to the flag: it opens a change request (or replaces the proposal of the one the same author already has
open for the flag) and the service raises `ApprovalRequired` once its transaction block is left, so the
request is kept and the caller learns of it. The API answers 202, the admin links to the review page, the
importer lists the requests, the scheduler stops: each caller must handle it; one that does not fails
loudly (a 500 or a failed job), never silently writes.

The only way through for a protected flag is `applying()`, entered by `flags.change_requests.
change_request_apply` for one approved request: it lets the services write that one flag of that one tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from audit.diff import document_diff
from audit.models import AuditAction
from audit.records import audit_event, audit_record
from flags.models import OPEN_STATUSES, ChangeRequest, ChangeRequestKind, ChangeRequestStatus, Flag
from kernel import context
from kernel.documents import same_document
from kernel.timefmt import iso


class ApprovalRequired(Exception):
    """The flag is protected: nothing was written, `change_request` waits for another person's approval.

    Deliberately not an `ApiError`: a caller that does not handle it fails loudly instead of reporting
    a refusal as if nothing had happened. Callers that run inside a transaction of their own must catch
    it inside that transaction, or the change request rolls back with it.
    """

    def __init__(self, change_request: ChangeRequest | None) -> None:
        if change_request is None:  # pragma: no cover - the services raise only with a request
            raise TypeError("ApprovalRequired needs the change request")
        self.change_request = change_request
        self.reused = reused = change_request.reused
        super().__init__(
            f"Flag {change_request.flag_key!r} is protected: change request #{change_request.pk} "
            f"{'was updated' if reused else 'was opened'}; it needs another person's approval."
        )


# (tenant id, flag id, the request's author) while an approved change request is being applied.
_applying: ContextVar[tuple[int, int, str] | None] = ContextVar("applying_change_request", default=None)


@contextmanager
def applying(flag: Flag, *, author: str = "") -> Iterator[None]:
    """Inside the block the services may write `flag` (an approved change request is being applied)."""
    token = _applying.set((flag.tenant_id, flag.pk, author))
    try:
        yield
    finally:
        _applying.reset(token)


def applying_author(flag: Flag) -> str | None:
    """The author of the approved change request being applied to `flag` now, or None."""
    held = _applying.get()
    if held is None or held[:2] != (flag.tenant_id, flag.pk):
        return None
    return held[2]


def flag_state_document(
    content: dict[str, Any], *, attributes: dict[str, Any], protected: bool, archived: bool
) -> dict[str, Any]:
    """What a change request compares: the definition, the attributes outside the engine (the kill
    category), whether it is protected, whether it is archived."""
    return {**content, **attributes, "protected": protected, "archived": archived}


def current_document(flag: Flag) -> dict[str, Any]:
    return flag_state_document(
        flag.content(), attributes=flag.attributes(), protected=flag.protected, archived=flag.is_archived
    )


def gate(
    flag: Flag,
    *,
    kind: str,
    proposed: dict[str, Any],
    rollback_version: int | None = None,
) -> ChangeRequest | None:
    """None when the service may write `flag`; else the change request that now holds the proposal.

    Called with `flag` locked (`select_for_update`) inside the service's ruleset transaction. An
    unprotected flag passes (protecting it is a direct change); so does the flag an approved request is
    being applied to (`applying`). Anything else on a protected flag opens a request, whoever the actor:
    API clients, people in the admin, `system:import_flags`, `system:rollout`. The same write again by the
    same author (same kind, base and proposal) returns their open request untouched, approvals kept, so a
    retrying client or the scheduler's next tick cannot undo an approval.
    """
    if not flag.protected:
        return None
    if applying_author(flag) is not None:
        return None
    author = context.actor()
    base = current_document(flag)
    mine = (
        ChangeRequest.objects.for_tenant(flag.tenant_id)
        .select_for_update()
        .filter(flag=flag, author=author, status__in=OPEN_STATUSES)
        .order_by("-id")
        .first()
    )
    if mine is not None and _same_proposal(mine, flag, kind, proposed, rollback_version):
        mine.reused = True  # the same write again (a retry, a scheduler's next tick): nothing changes
        return mine
    if mine is not None:
        before = change_request_document(mine)
        reused = True
    else:
        mine = ChangeRequest(tenant_id=flag.tenant_id, flag=flag, flag_key=flag.key, author=author)
        before, reused = None, False
    mine.kind = kind
    mine.status = ChangeRequestStatus.PENDING
    mine.base_version = flag.version
    mine.base = base
    mine.proposed = proposed
    mine.rollback_version = rollback_version
    mine.approvals = []
    mine.save()
    mine.reused = reused
    after = change_request_document(mine)
    if reused:
        # Same author, same flag: the open request now holds the newest proposal, approvals cleared.
        audit_record(
            tenant_id=flag.tenant_id,
            entity="change_request",
            key=str(mine.pk),
            action=AuditAction.EDIT,
            before=before,
            after=after,
        )
    else:
        audit_event(
            tenant_id=flag.tenant_id,
            entity="change_request",
            key=str(mine.pk),
            action=AuditAction.OPEN,
            version=mine.base_version,
            before=None,
            after=after,
        )
    return mine


def _same_proposal(
    cr: ChangeRequest, flag: Flag, kind: str, proposed: dict[str, Any], rollback_version: int | None
) -> bool:
    return (
        cr.kind == kind
        and cr.base_version == flag.version
        and cr.rollback_version == rollback_version
        and same_document(cr.proposed, proposed)
    )


def change_request_document(cr: ChangeRequest) -> dict[str, Any]:
    """The change request as the API shows it (api.md, Safe change, plus what a reviewer needs)."""
    return {
        "id": str(cr.pk),
        "flag_key": cr.flag_key,
        "kind": cr.kind,
        "status": cr.status,
        "base_version": cr.base_version,
        "proposed": cr.proposed,
        "diff": document_diff(cr.base, cr.proposed),
        "author": cr.author,
        "approvals": list(cr.approvals),
        "rollback_version": cr.rollback_version,
        "decided_by": cr.decided_by or None,
        "applied_version": cr.applied_version,
        "created_at": iso(cr.created_at),
        "updated_at": iso(cr.updated_at),
    }


KINDS = tuple(ChangeRequestKind.values)
