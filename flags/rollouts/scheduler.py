"""The scheduler: the worker (`manage.py run_worker`) calls `run_due(now)` on every pass (ADR 0016).

Exactly once: a step is applied and the plan advanced (`current_step`, `next_at`) in ONE transaction
that holds the tenant's lock and the plan's row lock (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite serialises writers). A worker killed before the commit leaves the plan as it was, and the next
pass applies the step; a second worker either skips the locked plan or, after the commit, finds it not due.

Late steps: when several steps are due at once (the worker was down), the LATEST due percentage is
applied once, as one new flag version; the earlier due steps are marked `overtaken` (with the moment), and
every step applied more than `ROLLOUT_LATE_SECONDS` after its `at` is marked `late`, and the plan's
`status_detail` says so. Nothing is skipped silently.

At apply time the plan is checked again: the flag archived → paused (resume after restoring it); the rule
or the variant gone → aborted; the write refused (e.g. a segment the rule uses is gone) → paused with
the error. While the circuit breaker holds the tenant (or the installation), no step is applied.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.models import AuditAction
from flags.approvals import ApprovalRequired
from flags.models import Flag
from flags.rollouts.models import ACTIVE, ROLLOUT_ACTOR, RolloutPlan
from flags.rollouts.models import RolloutStatus as Status
from flags.rollouts.selectors import engaged_tenant_ids
from flags.rollouts.services import MISSING, driven_serve, set_plan_status, step_serve, with_serve
from flags.services import flag_update
from kernel.context import acting_as
from kernel.errors import as_api_error
from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.ruleset import lock_tenant

logger = logging.getLogger("flagsvc.worker")

BATCH = 50

# The approvals gate's "change request opened instead of written" (four eyes, ADR 0015). A step that
# raises it waits for the approval (ADR 0016) instead of being applied or refused; it is caught inside
# the step's savepoint, so the change request is kept; flags.change_requests makes the step due again
# once the request is applied (or pauses the plan when it is rejected).
APPROVAL_PENDING: tuple[type[Exception], ...] = (ApprovalRequired,)


def run_due(now: datetime) -> int:
    """Apply the due step of every due plan not held by the breaker; how many plans moved."""
    installation_held, held_tenants = engaged_tenant_ids()
    if installation_held:
        return 0
    due = list(
        RolloutPlan.all_tenants.filter(status__in=ACTIVE, next_at__lte=now)
        .exclude(tenant_id__in=held_tenants)
        .order_by("next_at", "pk")
        .values_list("pk", "tenant_id")[:BATCH]
    )
    done = 0
    for plan_id, tenant_id in due:
        try:
            done += apply_due_step(plan_id, tenant_id, now)
        except Exception:
            # One broken plan must not hold up the others; it stays due and is retried next pass.
            logger.exception("rollout step failed", extra={"rollout": plan_id})
    return done


def apply_due_step(plan_id: int, tenant_id: int, now: datetime) -> int:
    """One plan's due step(s), exactly once; 1 if the plan changed, 0 if another worker had it."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with acting_as(ROLLOUT_ACTOR), transaction.atomic():
        lock_tenant(tenant.pk)  # lock order: tenant, then plan (as every plan service)
        plan = (
            RolloutPlan.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True)
            .filter(pk=plan_id, status__in=ACTIVE, next_at__lte=now)
            .first()
        )
        if plan is None:
            return 0  # done by another worker, paused meanwhile, or locked by someone
        installation_held, held_tenants = engaged_tenant_ids()  # re-read under the lock
        if installation_held or tenant.pk in held_tenants:
            return 0
        flag = Flag.objects.for_tenant(tenant).filter(pk=plan.flag_id).first()
        if flag is None or flag.is_archived:
            key = flag.key if flag else str(plan.flag_id)
            set_plan_status(
                plan,
                key,
                Status.PAUSED,
                "Paused by the scheduler: the flag is archived. Restore it, then resume the plan.",
                AuditAction.ROLLOUT_PAUSE,
            )
            return 1
        content = flag.content()
        if driven_serve(content, plan.target) is MISSING:
            set_plan_status(
                plan,
                flag.key,
                Status.ABORTED,
                f"Aborted by the scheduler: rule {plan.rule_id!r} no longer exists.",
                AuditAction.ROLLOUT_ABORT,
            )
            return 1
        if plan.variant not in {v.get("key") for v in flag.variants}:
            set_plan_status(
                plan,
                flag.key,
                Status.ABORTED,
                f"Aborted by the scheduler: variant {plan.variant!r} no longer exists.",
                AuditAction.ROLLOUT_ABORT,
            )
            return 1
        return _apply(plan, flag, content, now)


def _apply(plan: RolloutPlan, flag: Flag, content: dict[str, Any], now: datetime) -> int:
    due = [i for i in range(plan.current_step, len(plan.steps)) if _at(plan.steps[i]) <= now]
    last = due[-1]
    step = plan.steps[last]
    final = last == len(plan.steps) - 1
    data = with_serve(content, plan.target, step_serve(plan.variant, step["percentage"], plan.baseline))
    action = AuditAction.ROLLOUT_COMPLETE if final else AuditAction.ROLLOUT_PROGRESS
    pending: Exception | None = None
    try:
        with transaction.atomic():  # a refused write rolls back alone; the plan records why
            try:
                written = write_step(flag, data, action)
            except APPROVAL_PENDING as waiting:
                pending = waiting
    except Exception as exc:
        error = as_api_error(exc)
        if error is None:
            raise
        set_plan_status(
            plan,
            flag.key,
            Status.PAUSED,
            f"Paused by the scheduler: step {last + 1} was refused ({error.message}). Fix it, then resume.",
            AuditAction.ROLLOUT_PAUSE,
        )
        return 1
    if pending is not None:
        return _wait_for_approval(plan, last, pending)
    late_after = timedelta(seconds=settings.ROLLOUT_LATE_SECONDS)
    steps = [dict(s) for s in plan.steps]
    for i in due:
        steps[i].update(
            state="applied" if i == last else "overtaken",
            applied_at=iso(now),
            late=now - _at(steps[i]) > late_after,
            flag_version=written.version if i == last else None,
        )
    plan.steps = steps
    plan.current_step = last + 1
    plan.started_at = plan.started_at or now
    plan.next_at = None if final else _at(steps[last + 1])
    detail = _late_detail(steps, due, last)
    if final:
        set_plan_status(plan, flag.key, Status.COMPLETED, detail or "Completed on time.", None)
        return 1
    plan.status = Status.RUNNING
    plan.status_detail = detail
    plan.save()
    return 1


def _wait_for_approval(plan: RolloutPlan, index: int, pending: Exception) -> int:
    """The step became a change request: the plan waits (not due: `next_at` cleared, so no second request
    is opened) until the approvals side makes it due again once the request is applied or rejected."""
    step = plan.steps[index]
    plan.status_detail = f"Step {index + 1} ({step['percentage']} %) is waiting for approval: {pending}"[:500]
    plan.next_at = None
    plan.save()
    return 1


def write_step(flag: Flag, data: dict[str, Any], action: str) -> Flag:
    """The step as a new flag version through the one write service (audit actor `system:rollout`).

    The one place a step meets the flag write path: the approvals gate, when a flag is `protected`,
    surfaces here as an exception from `flag_update`, and the plan then waits (ADR 0016)."""
    return flag_update(
        tenant=flag.tenant, key=flag.key, data=data, actor=ROLLOUT_ACTOR, partial=True, audit_action=action
    )


def _at(step: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(step["at"])


def _words(moment: str) -> str:
    """`2026-12-01T14:00:00Z` → `2026-12-01 14:00:00 UTC` (the status detail is read by people)."""
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _late_detail(steps: list[dict[str, Any]], due: list[int], last: int) -> str:
    """Says in words what a late worker did; empty when the step came on time."""
    if not steps[last]["late"] and len(due) == 1:
        return ""
    applied = steps[last]
    parts = [
        f"Step {last + 1} ({applied['percentage']} %) was due at {_words(applied['at'])} "
        f"and applied at {_words(applied['applied_at'])}"
    ]
    parts[0] += " (late)." if applied["late"] else "."
    overtaken = [i for i in due if i != last]
    if overtaken:
        names = ", ".join(f"{i + 1} ({steps[i]['percentage']} %)" for i in overtaken)
        parts.append(
            f"Step(s) {names} came due in the meantime (worker down, plan paused or breaker on) and were "
            f"overtaken: the flag went straight to {applied['percentage']} %."
        )
    return " ".join(parts)[:500]
