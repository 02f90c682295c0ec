"""Writes of rollout plans and of the automation circuit breaker (ADR 0016).

Lock order everywhere: the tenant's row (`lock_tenant`, the same lock every ruleset change and the audit
chain take first), then the plan row. The scheduler takes them in that order too, so a pause racing the
worker's step waits for it (or the step waits for the pause) and never deadlocks.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from audit.models import AuditAction
from audit.records import audit_event, audit_record
from flags import approvals
from flags.models import Flag
from flags.rollouts import clock
from flags.rollouts.models import ACTIVE, MAX_STEPS, OPEN, ROLLOUT_ACTOR, AutomationBreaker, RolloutPlan
from flags.rollouts.models import RolloutStatus as Status
from flags.rollouts.selectors import tenant_scope_key
from kernel import context
from kernel.context import acting_as
from kernel.errors import Conflict, FlagNotFound, Invalid, NotFound, RolloutConflict
from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.ruleset import lock_tenant

PLAN_FIELDS = ("target", "variant", "steps")
MISSING = object()  # what a `rule:<id>` target drives once the rule is gone


# The driven part of a flag and the split of one step (one home for both) ------------------------


def driven_serve(content: dict[str, Any], target: str) -> Any:
    """What `target` ("default" | "rule:<id>") serves in this flag document; MISSING if the rule is gone."""
    if target == "default":
        return content.get("default")
    rule_id = target.removeprefix("rule:")
    for rule in content.get("rules") or []:
        if isinstance(rule, dict) and rule.get("id") == rule_id:
            return rule.get("serve")
    return MISSING


def with_serve(content: dict[str, Any], target: str, serve: dict[str, Any]) -> dict[str, Any]:
    """The partial update that makes `target` serve `serve`."""
    if target == "default":
        return {"default": serve}
    rule_id = target.removeprefix("rule:")
    rules = [
        {**rule, "serve": serve} if isinstance(rule, dict) and rule.get("id") == rule_id else rule
        for rule in content.get("rules") or []
    ]
    return {"rules": rules}


def baseline_of(content: dict[str, Any], target: str, variant: str) -> list[dict[str, Any]]:
    """Who the users outside the rollout keep getting: the target's serve when the plan is made, without
    the rolled-out variant. A single variant keeps all of the rest; a distribution (or `default: null`,
    the variants' weights) keeps its proportions. If nothing is left (the target already serves only
    `variant`), the rest get the flag's `off_variant`, or else the first other variant."""
    serve = driven_serve(content, target)
    variants = [v for v in content.get("variants") or [] if isinstance(v, dict)]
    if serve is None:
        entries = [{"variant": v.get("key"), "weight": v.get("weight", 0)} for v in variants]
    elif isinstance(serve, dict) and "variant" in serve:
        entries = [{"variant": serve["variant"], "weight": 1}]
    elif isinstance(serve, dict):
        entries = [dict(e) for e in serve.get("distribution") or [] if isinstance(e, dict)]
    else:
        entries = []
    rest = [
        {"variant": e["variant"], "weight": e["weight"]}
        for e in entries
        if e.get("variant") != variant and isinstance(e.get("weight"), int | float) and e["weight"] > 0
    ]
    if rest:
        return rest
    others = [v.get("key") for v in variants if v.get("key") != variant]
    fallback = content.get("off_variant") if content.get("off_variant") != variant else None
    return [{"variant": fallback or others[0], "weight": 1}] if (fallback or others) else []


def step_serve(variant: str, percentage: float, baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """The serve of one step: `percentage` % get `variant`, the rest the baseline in its proportions.

    `variant` comes first in the distribution, so raising the percentage keeps every user who was already
    in (rules.md, Bucketing). 100 % serves the variant alone."""
    if percentage >= 100 or not baseline:
        return {"variant": variant}
    total = sum(float(e["weight"]) for e in baseline)
    rest = 100 - percentage
    return {
        "distribution": [
            {"variant": variant, "weight": _number(percentage)},
            *(
                {"variant": e["variant"], "weight": _number(rest * float(e["weight"]) / total)}
                for e in baseline
            ),
        ]
    }


def _number(value: float) -> int | float:
    rounded = round(value, 6)
    return int(rounded) if float(rounded).is_integer() else rounded


# The conflict check of the flag write services ---------------------------------------------------


def check_rollout_conflict(
    *, tenant: Tenant, flag: Flag, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """409 `rollout_conflict` when a write by anyone but the scheduler changes what an active plan drives.

    Called by `flags.services` under the tenant's lock, so a plan cannot start or resume in between."""
    if ROLLOUT_ACTOR in (context.actor(), approvals.applying_author(flag)):
        return  # the scheduler's own step, or its step's change request being applied (four eyes)
    for plan in RolloutPlan.objects.for_tenant(tenant).filter(flag_id=flag.pk, status__in=ACTIVE):
        if driven_serve(before, plan.target) != driven_serve(after, plan.target):
            what = "the default serve" if plan.target == "default" else f"rule {plan.rule_id!r}"
            raise RolloutConflict(
                f"Rollout plan {plan.pk} ({plan.status}) drives {what} of flag {flag.key!r}; "
                "pause or abort it first.",
                details={"rollout": str(plan.pk), "target": plan.target, "status": plan.status},
            )


# Plans ------------------------------------------------------------------------------------------


def _live_flag(tenant: Tenant, key: str) -> Flag:
    flag = Flag.objects.for_tenant(tenant).filter(key=key, archived_at__isnull=True).first()
    if flag is None:
        raise FlagNotFound(f"No flag {key!r} in this tenant.")
    return flag


def _parse_at(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def parse_plan(
    data: dict[str, Any], content: dict[str, Any], now: datetime
) -> tuple[str, str, list[dict[str, Any]]]:
    """Check a plan against the flag it drives; 422 naming each bad field (`steps[2].at`)."""
    errors: dict[str, list[str]] = {}
    for field in sorted(set(data) - set(PLAN_FIELDS)):
        errors[field[:100]] = ["Unknown field; a plan has `target`, `variant` and `steps`."]
    target, variant, raw_steps = data.get("target", "default"), data.get("variant"), data.get("steps")
    rule_ids = [r.get("id") for r in content.get("rules") or [] if isinstance(r, dict)]
    if not isinstance(target, str) or not (
        target == "default" or (target.startswith("rule:") and target.removeprefix("rule:") in rule_ids)
    ):
        known = ", ".join(f"rule:{r}" for r in rule_ids) or "no rules"
        errors["target"] = [f'Use "default" or "rule:<id>" of one of this flag\'s rules ({known}).']
    variant_keys = [v.get("key") for v in content.get("variants") or [] if isinstance(v, dict)]
    if not isinstance(variant, str) or variant not in variant_keys:
        errors["variant"] = [f"Name one of the flag's variants: {', '.join(map(str, variant_keys))}."]
    elif len(variant_keys) < 2:
        errors["variant"] = ["The flag has one variant only: there is nothing to roll out from."]
    steps: list[dict[str, Any]] = []
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        errors["steps"] = [f'Give 1 to {MAX_STEPS} steps: [{{"at": "<ISO 8601>", "percentage": 5}}, ...].']
        raw_steps = []
    previous: tuple[datetime, float] | None = None
    for i, raw in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(raw, dict) or set(raw) != {"at", "percentage"}:
            errors[where] = ['A step is {"at": "<ISO 8601>", "percentage": <0-100>}.']
            previous = None
            continue
        at, percentage = _parse_at(raw["at"]), raw["percentage"]
        if at is None:
            errors[f"{where}.at"] = ["An ISO 8601 date-time with its zone (2026-12-01T14:00:00Z)."]
        elif at <= now:
            errors[f"{where}.at"] = [
                f"This moment has passed (now is {iso(now)}); steps must be in the future."
            ]
        elif previous is not None and at <= previous[0]:
            errors[f"{where}.at"] = [f"Must be after steps[{i - 1}].at: steps go forward in time."]
        if (
            isinstance(percentage, bool)
            or not isinstance(percentage, int | float)
            or not math.isfinite(percentage)
        ):
            errors[f"{where}.percentage"] = ["A number from 0 to 100."]
            percentage = None
        elif not 0 <= percentage <= 100:
            errors[f"{where}.percentage"] = ["A number from 0 to 100."]
        elif previous is not None and percentage <= previous[1]:
            errors[f"{where}.percentage"] = [
                f"Must be more than steps[{i - 1}].percentage: a rollout only grows."
            ]
        if at is not None and percentage is not None:
            previous = (at, float(percentage))
            steps.append(
                {
                    "at": iso(at.astimezone(UTC)),
                    "percentage": percentage,
                    "state": "pending",
                    "applied_at": None,
                    "late": False,
                    "flag_version": None,
                }
            )
    if errors:
        raise Invalid(errors)
    return str(target), str(variant), steps


def rollout_create(
    *, tenant: Tenant, key: str, data: dict[str, Any], actor: str | None = None
) -> RolloutPlan:
    """Schedule a plan; a second open plan for the same target is 409 `rollout_conflict`."""
    with acting_as(actor), transaction.atomic():
        lock_tenant(tenant.pk)
        flag = _live_flag(tenant, key)
        content = flag.content()
        target, variant, steps = parse_plan(data, content, clock.now())
        plan = RolloutPlan(
            tenant=tenant,
            flag=flag,
            target=target,
            variant=variant,
            baseline=baseline_of(content, target, variant),
            steps=steps,
            next_at=datetime.fromisoformat(steps[0]["at"]),
            created_by=context.actor(),
        )
        try:
            with transaction.atomic():
                plan.save()
        except IntegrityError:
            other = (
                RolloutPlan.objects.for_tenant(tenant)
                .filter(flag=flag, target=target, status__in=OPEN)
                .first()
            )
            raise RolloutConflict(
                f"Flag {key!r} already has an open rollout plan for {target!r}; abort it first.",
                details={"rollout": str(other.pk) if other else None, "target": target},
            ) from None
        plan.refresh_from_db()
        audit_event(
            tenant_id=tenant.pk,
            entity="flag",
            key=flag.key,
            action=AuditAction.ROLLOUT_SCHEDULE,
            version=None,  # the flag itself has not changed (no new version) until the first step
            before=None,
            after={"rollout": plan.to_document(flag.key)},
        )
        return plan


def _locked_plan(tenant: Tenant, key: str, plan_id: int) -> tuple[Flag, RolloutPlan]:
    flag = Flag.objects.for_tenant(tenant).filter(key=key).first()
    plan = (
        RolloutPlan.objects.for_tenant(tenant).select_for_update().filter(pk=plan_id, flag=flag).first()
        if flag is not None
        else None
    )
    if flag is None or plan is None:
        raise NotFound(f"Flag {key!r} has no rollout plan {plan_id}.")
    return flag, plan


def set_plan_status(plan: RolloutPlan, flag_key: str, status: str, detail: str, action: str | None) -> None:
    """Change a plan's status and audit it (entity `flag`, the plan before and after); `action=None` when
    the change is audited already (the last step's flag version is `rollout_complete`). Caller holds the locks."""
    before = plan.to_document(flag_key)
    plan.status = status
    plan.status_detail = detail[:500]
    if status in (Status.COMPLETED, Status.ABORTED):
        plan.finished_at = clock.now()
        plan.next_at = None
    plan.save()
    if action is None:
        return
    audit_record(
        tenant_id=plan.tenant_id,
        entity="flag",
        key=flag_key,
        action=action,
        before={"rollout": before},
        after={"rollout": plan.to_document(flag_key)},
    )


def _transition(
    *, tenant: Tenant, key: str, plan_id: int, actor: str | None, allowed: tuple[str, ...], verb: str
) -> RolloutPlan:
    with acting_as(actor), transaction.atomic():
        lock_tenant(tenant.pk)
        flag, plan = _locked_plan(tenant, key, plan_id)
        if plan.status not in allowed:
            raise Conflict(
                f"Rollout plan {plan.pk} is {plan.status}; only a {' or '.join(allowed)} plan can be {verb}.",
                details={"rollout": str(plan.pk), "status": plan.status},
            )
        who = context.actor()
        if verb == "paused":
            set_plan_status(plan, flag.key, Status.PAUSED, f"Paused by {who}.", AuditAction.ROLLOUT_PAUSE)
        elif verb == "aborted":
            set_plan_status(
                plan,
                flag.key,
                Status.ABORTED,
                f"Aborted by {who}; the flag keeps its current split.",
                AuditAction.ROLLOUT_ABORT,
            )
        else:
            if flag.is_archived:
                raise Conflict(f"Flag {key!r} is archived; restore it before resuming its rollout.")
            status = Status.RUNNING if plan.current_step else Status.SCHEDULED
            plan.next_at = (
                plan.steps[plan.current_step]["at"] if plan.current_step < len(plan.steps) else None
            )
            set_plan_status(plan, flag.key, status, f"Resumed by {who}.", AuditAction.ROLLOUT_RESUME)
        return plan


def rollout_pause(*, tenant: Tenant, key: str, plan_id: int, actor: str | None = None) -> RolloutPlan:
    """Hold a scheduled or running plan: no step is applied, and manual writes to its target are allowed."""
    return _transition(tenant=tenant, key=key, plan_id=plan_id, actor=actor, allowed=ACTIVE, verb="paused")


def rollout_resume(*, tenant: Tenant, key: str, plan_id: int, actor: str | None = None) -> RolloutPlan:
    """Continue a paused plan: steps whose time came while it was paused are then due (applied late)."""
    return _transition(
        tenant=tenant, key=key, plan_id=plan_id, actor=actor, allowed=(Status.PAUSED,), verb="resumed"
    )


def rollout_abort(*, tenant: Tenant, key: str, plan_id: int, actor: str | None = None) -> RolloutPlan:
    """Stop a plan for good; the flag keeps the split of the last applied step (nothing is reverted)."""
    return _transition(tenant=tenant, key=key, plan_id=plan_id, actor=actor, allowed=OPEN, verb="aborted")


# The circuit breaker ----------------------------------------------------------------------------


def breaker_set(
    *, tenant: Tenant | None, engaged: bool, reason: str = "", actor: str | None = None
) -> AutomationBreaker:
    """Engage or release the tenant's switch (or the installation's, `tenant=None`). Audited (entity
    `automation`) in the tenant, or in every tenant for the installation's switch. Idempotent."""
    reason = reason.strip()
    if engaged and not reason:
        raise Invalid({"reason": ["Say why automation is paused (at most 500 characters)."]})
    if len(reason) > 500:
        raise Invalid({"reason": ["At most 500 characters."]})
    scope = AutomationBreaker.INSTALLATION if tenant is None else tenant_scope_key(tenant.pk)
    with acting_as(actor), transaction.atomic():
        row, _ = AutomationBreaker.objects.select_for_update().get_or_create(scope=scope)
        if row.engaged == engaged and (not engaged or row.reason == reason):
            return row
        before = row.to_document()
        row.engaged, row.reason = engaged, reason
        row.changed_by, row.changed_at = context.actor(), clock.now()
        row.save()
        tenant_ids = (
            [tenant.pk]
            if tenant is not None
            else list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))
        )
        key = "breaker" if tenant is not None else "installation-breaker"
        for tenant_id in tenant_ids:
            audit_record(
                tenant_id=tenant_id,
                entity="automation",
                key=key,
                action=AuditAction.UPDATE,
                before=before,
                after=row.to_document(),
            )
        return row


def rollout_change_request_decided(*, tenant: Tenant, flag: Flag, cr_id: int, applied: bool) -> None:
    """A change request the scheduler opened for a step of a protected flag (four eyes, ADR 0016) was
    applied or rejected: the waiting plan's step is due again (applied: it finds the flag already at
    the step and records it), or the plan pauses with the reason (rejected: resume to try again).
    Called by flags.change_requests under the tenant's lock, inside its transaction."""
    waiting = RolloutPlan.objects.for_tenant(tenant).filter(
        flag_id=flag.pk, status__in=ACTIVE, next_at__isnull=True
    )
    for plan in waiting.select_for_update():
        if plan.current_step >= len(plan.steps):
            continue
        if applied:
            plan.next_at = clock.now()
            plan.status_detail = f"Change request #{cr_id} was applied; the step is recorded next."
            plan.save()
        else:
            set_plan_status(
                plan,
                flag.key,
                Status.PAUSED,
                f"Paused: change request #{cr_id} for step {plan.current_step + 1} was rejected. "
                "Resume to propose the step again, or abort the plan.",
                AuditAction.ROLLOUT_PAUSE,
            )
