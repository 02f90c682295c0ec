"""Scheduled rollouts and the circuit breaker, through the services and the scheduler with an injected
clock (ADR 0016): no test sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from audit.models import AuditEntry, ChangeEvent
from flags.change_requests import change_request_apply, change_request_approve, change_request_reject
from flags.models import ChangeRequest, Flag, FlagVersion
from flags.rollouts import clock
from flags.rollouts.models import RolloutPlan
from flags.rollouts.scheduler import run_due
from flags.rollouts.services import (
    baseline_of,
    breaker_set,
    rollout_abort,
    rollout_create,
    rollout_pause,
    rollout_resume,
    step_serve,
)
from flags.services import flag_archive, flag_restore, flag_rollback, flag_update
from kernel.errors import Conflict, Invalid, RolloutConflict
from tests.factories import TenantFactory, make_flag
from webhooks.worker import Worker

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def now() -> Iterator[Clock]:
    frozen = Clock(T0)
    with clock.using_clock(frozen):
        yield frozen


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def plan_of(tenant: Any, key: str = "checkout", **body: Any) -> RolloutPlan:
    data = {
        "target": "default",
        "variant": "on",
        "steps": [
            {"at": at(10), "percentage": 5},
            {"at": at(20), "percentage": 25},
            {"at": at(30), "percentage": 100},
        ],
        **body,
    }
    return rollout_create(tenant=tenant, key=key, data=data, actor="user:pm")


def fresh(plan: RolloutPlan) -> RolloutPlan:
    return RolloutPlan.objects.for_tenant(plan.tenant_id).get(pk=plan.pk)


def flag(tenant: Any, key: str = "checkout") -> Flag:
    return Flag.objects.for_tenant(tenant).get(key=key)


def test_step_serve__puts_the_variant_first_and_keeps_the_baseline_proportions():
    baseline = [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 3}]
    assert step_serve("new", 20, baseline) == {
        "distribution": [
            {"variant": "new", "weight": 20},
            {"variant": "a", "weight": 20},
            {"variant": "b", "weight": 60},
        ]
    }
    assert step_serve("new", 100, baseline) == {"variant": "new"}


def test_baseline__boolean_default_null__is_the_other_variant_by_weight(tenant):
    content = make_flag(
        tenant,
        variants=[{"key": "on", "value": True, "weight": 0}, {"key": "off", "value": False, "weight": 100}],
    ).content()
    assert baseline_of(content, "default", "on") == [{"variant": "off", "weight": 100}]


def test_scheduler__applies_each_step_when_due__as_a_new_version_by_system_rollout(tenant, now):
    make_flag(tenant, state="on", default={"variant": "off"})
    plan = plan_of(tenant)
    assert run_due(now()) == 0 and fresh(plan).current_step == 0

    now.advance(minutes=10)
    assert run_due(now()) == 1
    assert flag(tenant).default == {
        "distribution": [{"variant": "on", "weight": 5}, {"variant": "off", "weight": 95}]
    }
    plan = fresh(plan)
    assert (plan.status, plan.current_step, plan.steps[0]["state"]) == ("running", 1, "applied")
    assert plan.steps[0]["late"] is False and plan.steps[0]["flag_version"] == flag(tenant).version
    assert run_due(now()) == 0, "a step is applied once"

    now.advance(minutes=10)
    run_due(now())
    now.advance(minutes=10)
    run_due(now())
    plan = fresh(plan)
    assert (plan.status, plan.current_step) == ("completed", 3)
    assert flag(tenant).default == {"variant": "on"}
    entries = AuditEntry.objects.for_tenant(tenant).filter(entity="flag", actor="system:rollout")
    assert sorted(entries.values_list("action", flat=True)) == [
        "rollout_complete",
        "rollout_progress",
        "rollout_progress",
    ]
    events = ChangeEvent.objects.for_tenant(tenant).order_by("pk").values_list("action", flat=True)
    assert list(events)[-4:] == [
        "rollout_schedule",
        "rollout_progress",
        "rollout_progress",
        "rollout_complete",
    ]


def test_scheduler__through_the_worker_pass__applies_due_steps(tenant, now):
    make_flag(tenant, default={"variant": "off"})
    plan = plan_of(tenant)
    now.advance(minutes=10)
    Worker(clock=now).run_once()
    assert fresh(plan).current_step == 1


def test_scheduler__worker_down_past_two_steps__applies_the_latest_once_and_says_so(tenant, now):
    make_flag(tenant, default={"variant": "off"})
    plan = plan_of(tenant)
    versions_before = FlagVersion.objects.for_tenant(tenant).count()
    now.advance(minutes=25)  # steps 1 (10 min) and 2 (20 min) are both overdue
    assert run_due(now()) == 1
    plan = fresh(plan)
    assert FlagVersion.objects.for_tenant(tenant).count() == versions_before + 1
    assert flag(tenant).default["distribution"][0] == {"variant": "on", "weight": 25}
    assert [s["state"] for s in plan.steps] == ["overtaken", "applied", "pending"]
    assert plan.steps[0]["late"] is True and plan.steps[1]["late"] is True
    assert plan.current_step == 2 and plan.status == "running"
    assert "late" in plan.status_detail and "overtaken" in plan.status_detail


def test_scheduler__rule_target__drives_only_that_rule(tenant, now):
    rules = [
        {"id": "beta", "when": {"attr": "plan", "op": "eq", "value": "pro"}, "serve": {"variant": "off"}}
    ]
    make_flag(tenant, rules=rules, default={"variant": "off"})
    plan = plan_of(tenant, target="rule:beta", steps=[{"at": at(1), "percentage": 50}])
    now.advance(minutes=1)
    run_due(now())
    stored = flag(tenant)
    assert stored.rules[0]["serve"]["distribution"][0] == {"variant": "on", "weight": 50}
    assert stored.default == {"variant": "off"}
    assert fresh(plan).status == "completed"


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"at": at(-1), "percentage": 5}], "steps[0].at"),
        ([{"at": at(10), "percentage": 5}, {"at": at(5), "percentage": 25}], "steps[1].at"),
        ([{"at": at(10), "percentage": 25}, {"at": at(20), "percentage": 25}], "steps[1].percentage"),
        ([{"at": at(10), "percentage": 101}], "steps[0].percentage"),
        ([{"at": at(10), "percentage": True}], "steps[0].percentage"),
        ([{"at": "2026-12-01T10:00:00", "percentage": 5}], "steps[0].at"),
        ([{"at": at(10)}], "steps[0]"),
        ([{"at": at(i + 1), "percentage": i} for i in range(21)], "steps"),
        ([], "steps"),
    ],
)
def test_rollout_create__bad_steps__422_naming_the_step(tenant, now, steps, field):
    make_flag(tenant)
    with pytest.raises(Invalid) as refused:
        plan_of(tenant, steps=steps)
    assert field in refused.value.details["fields"]


def test_rollout_create__step_times_with_an_offset__stored_in_utc(tenant, now):
    make_flag(tenant)
    plan = plan_of(tenant, steps=[{"at": "2026-12-01T13:00:00+02:00", "percentage": 10}])
    assert plan.steps[0]["at"] == "2026-12-01T11:00:00Z"


def test_rollout_create__unknown_variant_or_rule__422(tenant, now):
    make_flag(tenant)
    with pytest.raises(Invalid) as refused:
        plan_of(tenant, variant="nope", target="rule:gone")
    assert set(refused.value.details["fields"]) == {"variant", "target"}


def test_rollout_create__second_open_plan_for_the_target__rollout_conflict(tenant, now):
    make_flag(tenant)
    first = plan_of(tenant)
    rollout_pause(tenant=tenant, key="checkout", plan_id=first.pk)
    with pytest.raises(RolloutConflict) as refused:
        plan_of(tenant)
    assert refused.value.details["rollout"] == str(first.pk)
    rollout_abort(tenant=tenant, key="checkout", plan_id=first.pk)
    assert plan_of(tenant).status == "scheduled"


def test_manual_write_to_the_driven_part__rollout_conflict__until_paused(tenant, now):
    make_flag(tenant, default={"variant": "off"})
    plan = plan_of(tenant)
    with pytest.raises(RolloutConflict) as refused:
        flag_update(
            tenant=tenant, key="checkout", data={"default": {"variant": "on"}}, partial=True, actor="user:x"
        )
    assert refused.value.details["rollout"] == str(plan.pk)
    # What the plan does not drive stays writable.
    flag_update(tenant=tenant, key="checkout", data={"description": "d"}, partial=True, actor="user:x")
    rollout_pause(tenant=tenant, key="checkout", plan_id=plan.pk)
    flag_update(
        tenant=tenant, key="checkout", data={"default": {"variant": "on"}}, partial=True, actor="user:x"
    )


def test_rollback_over_the_driven_part__rollout_conflict(tenant, now):
    make_flag(tenant, default={"variant": "off"})
    flag_update(tenant=tenant, key="checkout", data={"default": None}, partial=True, actor="user:x")
    plan_of(tenant)
    with pytest.raises(RolloutConflict):
        flag_rollback(tenant=tenant, key="checkout", version=1, actor="user:x")


def test_removing_the_driven_rule__rollout_conflict(tenant, now):
    rules = [
        {"id": "beta", "when": {"attr": "plan", "op": "eq", "value": "pro"}, "serve": {"variant": "off"}}
    ]
    make_flag(tenant, rules=rules)
    plan_of(tenant, target="rule:beta")
    with pytest.raises(RolloutConflict):
        flag_update(tenant=tenant, key="checkout", data={"rules": []}, partial=True, actor="user:x")


def test_pause_resume_abort__status_rules_and_audit(tenant, now):
    make_flag(tenant)
    plan = plan_of(tenant)
    assert rollout_pause(tenant=tenant, key="checkout", plan_id=plan.pk).status == "paused"
    with pytest.raises(Conflict):
        rollout_pause(tenant=tenant, key="checkout", plan_id=plan.pk)
    now.advance(minutes=15)
    assert run_due(now()) == 0, "a paused plan gets no step"
    assert rollout_resume(tenant=tenant, key="checkout", plan_id=plan.pk).status == "scheduled"
    assert run_due(now()) == 1, "the step that came due while paused is applied (late) on resume"
    assert rollout_abort(tenant=tenant, key="checkout", plan_id=plan.pk).status == "aborted"
    with pytest.raises(Conflict):
        rollout_resume(tenant=tenant, key="checkout", plan_id=plan.pk)
    actions = (
        AuditEntry.objects.for_tenant(tenant).filter(entity_key="checkout").values_list("action", flat=True)
    )
    assert {"rollout_pause", "rollout_resume", "rollout_abort"} <= set(actions)


def test_scheduler__flag_archived__plan_paused_with_reason(tenant, now):
    make_flag(tenant)
    plan = plan_of(tenant)
    flag_archive(tenant=tenant, key="checkout", actor="user:x")
    now.advance(minutes=10)
    run_due(now())
    plan = fresh(plan)
    assert plan.status == "paused" and "archived" in plan.status_detail
    flag_restore(tenant=tenant, key="checkout", actor="user:x")
    rollout_resume(tenant=tenant, key="checkout", plan_id=plan.pk)
    run_due(now())
    assert fresh(plan).current_step == 1


def test_scheduler__variant_removed__plan_aborted_with_reason(tenant, now):
    make_flag(
        tenant,
        type="string",
        variants=[
            {"key": "a", "value": "a", "weight": 1},
            {"key": "b", "value": "b", "weight": 1},
            {"key": "c", "value": "c", "weight": 1},
        ],
        off_variant="a",
        default={"variant": "a"},
    )
    plan = plan_of(tenant, variant="c")
    flag_update(
        tenant=tenant,
        key="checkout",
        actor="user:x",
        partial=True,
        data={"variants": [{"key": "a", "value": "a", "weight": 1}, {"key": "b", "value": "b", "weight": 1}]},
    )
    now.advance(minutes=10)
    run_due(now())
    plan = fresh(plan)
    assert plan.status == "aborted" and "'c'" in plan.status_detail


def test_breaker__tenant_switch_holds_its_plans_only__and_is_audited(tenant, now):
    other = TenantFactory(slug="globex")
    make_flag(tenant)
    make_flag(other)
    mine, theirs = plan_of(tenant), plan_of(other)
    breaker_set(tenant=tenant, engaged=True, reason="incident 42", actor="user:ops")
    now.advance(minutes=10)
    run_due(now())
    assert fresh(mine).current_step == 0 and fresh(theirs).current_step == 1
    assert AuditEntry.objects.for_tenant(tenant).filter(entity="automation").count() == 1
    breaker_set(tenant=tenant, engaged=False, actor="user:ops")
    run_due(now())
    assert fresh(mine).current_step == 1 and fresh(mine).steps[0]["applied_at"] == now().isoformat().replace(
        "+00:00", "Z"
    )


def test_breaker__installation_switch__holds_every_tenant_and_needs_a_reason(tenant, now):
    make_flag(tenant)
    plan = plan_of(tenant)
    with pytest.raises(Invalid):
        breaker_set(tenant=None, engaged=True, reason=" ")
    call_command("automation_breaker", "on", "--all", "--reason", "db migration")
    now.advance(minutes=10)
    assert run_due(now()) == 0 and fresh(plan).current_step == 0
    call_command("automation_breaker", "off", "--all")
    assert run_due(now()) == 1


def test_manual_write_inside_the_scheduler_transaction_is_not_a_conflict(tenant, now):
    """The scheduler's own write (actor system:rollout) passes the conflict check it is guarded by."""
    make_flag(tenant, default={"variant": "off"})
    plan_of(tenant)
    now.advance(minutes=10)
    assert run_due(now()) == 1


def test_scheduler__protected_flag__step_waits_for_approval_then_is_recorded_once_applied(tenant, now):
    """Four eyes (ADR 0015) on a scheduled step: the step opens a change request as system:rollout, the
    plan waits (no second request), and once another person applies it the plan records the step."""
    make_flag(tenant, default={"variant": "off"}, protected=True)
    plan = plan_of(tenant)
    now.advance(minutes=10)

    assert run_due(now()) == 1
    plan = fresh(plan)
    request = ChangeRequest.objects.for_tenant(tenant).get()
    assert (request.author, request.status) == ("system:rollout", "pending")
    assert plan.current_step == 0 and plan.next_at is None
    assert plan.status_detail.startswith("Step 1 (5 %) is waiting for approval")
    assert flag(tenant).default == {"variant": "off"}, "nothing written before the approval"
    assert run_due(now()) == 0, "no second change request for the same step"

    change_request_approve(tenant=tenant, cr_id=request.pk, actor="user:reviewer")
    change_request_apply(tenant=tenant, cr_id=request.pk, actor="user:reviewer")

    assert flag(tenant).default == step_serve("on", 5, plan.baseline), "the step, as proposed"
    assert run_due(now()) == 1
    plan = fresh(plan)
    assert (plan.status, plan.current_step) == ("running", 1)
    assert ChangeRequest.objects.for_tenant(tenant).count() == 1


def test_scheduler__protected_flag__step_request_rejected__plan_pauses_and_says_why(tenant, now):
    make_flag(tenant, default={"variant": "off"}, protected=True)
    plan = plan_of(tenant)
    now.advance(minutes=10)
    run_due(now())
    request = ChangeRequest.objects.for_tenant(tenant).get()

    change_request_reject(tenant=tenant, cr_id=request.pk, actor="user:reviewer")

    plan = fresh(plan)
    assert plan.status == "paused"
    assert f"change request #{request.pk} for step 1 was rejected" in plan.status_detail
    assert flag(tenant).default == {"variant": "off"}
    assert run_due(now()) == 0
