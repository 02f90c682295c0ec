"""Reads of rollout plans and of the circuit breaker."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from flags.rollouts.models import ACTIVE, AutomationBreaker, RolloutPlan
from tenancy.models import Tenant


def tenant_scope_key(tenant_id: int) -> str:
    return f"tenant:{tenant_id}"


def plan_list(*, tenant: Tenant, flag_id: int) -> QuerySet[RolloutPlan]:
    return RolloutPlan.objects.for_tenant(tenant).filter(flag_id=flag_id).order_by("-id")


def plan_get(*, tenant: Tenant, flag_id: int, plan_id: int) -> RolloutPlan | None:
    return plan_list(tenant=tenant, flag_id=flag_id).filter(pk=plan_id).first()


def active_plans(*, tenant: Tenant, flag_ids: list[int]) -> dict[int, list[RolloutPlan]]:
    """The scheduled or running plans of these flags, by flag id (the admin's list badge)."""
    found: dict[int, list[RolloutPlan]] = {}
    rows = RolloutPlan.objects.for_tenant(tenant).filter(flag_id__in=flag_ids, status__in=ACTIVE)
    for plan in rows.order_by("id"):
        found.setdefault(plan.flag_id, []).append(plan)
    return found


def breaker_rows(*, tenant_id: int) -> tuple[AutomationBreaker | None, AutomationBreaker | None]:
    """(the tenant's switch, the installation's switch); None where the row was never written."""
    rows = {
        row.scope: row
        for row in AutomationBreaker.objects.filter(
            Q(scope=AutomationBreaker.INSTALLATION) | Q(scope=tenant_scope_key(tenant_id))
        )
    }
    return rows.get(tenant_scope_key(tenant_id)), rows.get(AutomationBreaker.INSTALLATION)


def breaker_hold(*, tenant_id: int) -> dict[str, Any] | None:
    """Why automation is held for this tenant: `{"by": "installation"|"tenant", "since", "reason"}`,
    the installation's switch first; None while both are released."""
    own, installation = breaker_rows(tenant_id=tenant_id)
    for by, row in (("installation", installation), ("tenant", own)):
        if row is not None and row.engaged:
            return {"by": by, **row.to_document()}
    return None


def breaker_document(*, tenant: Tenant) -> dict[str, Any]:
    """`GET /v1/automation`: the tenant's switch, and the installation's (read-only here)."""
    own, installation = breaker_rows(tenant_id=tenant.pk)
    released = AutomationBreaker(engaged=False).to_document()
    return {
        **(own.to_document() if own else released),
        "installation": installation.to_document() if installation else released,
        "held": breaker_hold(tenant_id=tenant.pk) is not None,
    }


def engaged_tenant_ids() -> tuple[bool, set[int]]:
    """(is the installation's switch on, the tenants whose own switch is on): the scheduler's filter."""
    installation = False
    tenants: set[int] = set()
    for row in AutomationBreaker.objects.filter(engaged=True):
        if row.scope == AutomationBreaker.INSTALLATION:
            installation = True
        elif row.scope.startswith("tenant:"):
            tenants.add(int(row.scope.removeprefix("tenant:")))
    return installation, tenants


def plan_document(plan: RolloutPlan, flag_key: str, hold: dict[str, Any] | None) -> dict[str, Any]:
    """The plan as the API shows it: `held_by_breaker` is set on an active plan while the breaker holds it."""
    return {**plan.to_document(flag_key), "held_by_breaker": hold if plan.is_active else None}
