"""The flag admin's rollout page: the plan editor, pause/resume/abort, the breaker, the list badge (ADR 0016)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from flags.rollouts import clock
from flags.rollouts.models import RolloutPlan
from flags.rollouts.selectors import breaker_hold
from flags.rollouts.services import rollout_create
from tests.admin.conftest import signed_in

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with clock.using_clock(lambda: T0):
        yield


def page(flag) -> str:
    return reverse("admin:flags_flag_rollouts", args=[flag.pk])


EDITOR_POST = {
    "action": "create",
    "target": "default",
    "variant": "on",
    "step-0-at": "2026-12-01T12:00",
    "step-0-percentage": "10",
    "step-1-at": "2026-12-01T14:00",
    "step-1-percentage": "50",
    "step-2-at": "",
    "step-2-percentage": "",
}


def test_plan_editor__rows_become_a_scheduled_plan_in_utc(editor, acme_flag):
    client = signed_in(editor)
    response = client.post(page(acme_flag), EDITOR_POST)
    assert response.status_code == 302
    plan = RolloutPlan.objects.for_tenant(acme_flag.tenant).get()
    assert [(s["at"], s["percentage"]) for s in plan.steps] == [
        ("2026-12-01T12:00:00Z", 10),
        ("2026-12-01T14:00:00Z", 50),
    ]
    assert plan.created_by == "user:alice"
    shown = client.get(page(acme_flag)).content.decode()
    assert "2026-12-01 12:00 UTC" in shown and "scheduled" in shown
    listed = client.get(reverse("admin:flags_flag_changelist")).content.decode()
    assert "on 0 % → 10 % at 2026-12-01 12:00 UTC" in listed
    change = client.get(reverse("admin:flags_flag_change", args=[acme_flag.pk])).content.decode()
    assert "See the plans and the time line" in change


def test_plan_editor__bad_rows__nothing_scheduled_and_the_step_named(editor, acme_flag):
    client = signed_in(editor)
    response = client.post(page(acme_flag), {**EDITOR_POST, "step-1-percentage": "5"})
    assert response.status_code == 200
    assert "Step 2, percentage" in response.content.decode()
    assert not RolloutPlan.objects.for_tenant(acme_flag.tenant).exists()


def test_pause_resume_abort_buttons(editor, acme_flag):
    plan = rollout_create(
        tenant=acme_flag.tenant,
        key="checkout",
        actor="user:x",
        data={"variant": "on", "steps": [{"at": "2026-12-01T12:00:00Z", "percentage": 10}]},
    )
    client = signed_in(editor)
    for action, status in (("pause", "paused"), ("resume", "scheduled"), ("abort", "aborted")):
        assert client.post(page(acme_flag), {"action": action, "plan": plan.pk}).status_code == 302
        plan.refresh_from_db()
        assert plan.status == status


def test_viewer__sees_the_page_but_cannot_schedule(viewer, acme_flag):
    client = signed_in(viewer)
    assert client.get(page(acme_flag)).status_code == 200
    assert client.post(page(acme_flag), EDITOR_POST).status_code == 403
    assert not RolloutPlan.objects.for_tenant(acme_flag.tenant).exists()


def test_breaker__owner_flips_it__editor_cannot(owner, editor, acme_flag):
    assert signed_in(editor).post(page(acme_flag), {"action": "breaker-on", "reason": "x"}).status_code == 403
    client = signed_in(owner)
    assert client.post(page(acme_flag), {"action": "breaker-on", "reason": "incident 42"}).status_code == 302
    assert breaker_hold(tenant_id=acme_flag.tenant_id)["reason"] == "incident 42"
    assert "Automation is paused" in client.get(page(acme_flag)).content.decode()
    assert (
        AuditEntry.objects.for_tenant(acme_flag.tenant)
        .filter(entity="automation", actor="user:olivia")
        .exists()
    )
    client.post(page(acme_flag), {"action": "breaker-off"})
    assert breaker_hold(tenant_id=acme_flag.tenant_id) is None


def test_another_tenants_flag__404(outsider, acme_flag):
    assert signed_in(outsider).get(page(acme_flag)).status_code == 404
