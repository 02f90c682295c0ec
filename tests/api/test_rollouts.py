"""/v1/flags/{key}/rollouts and /v1/automation: api.md, Safe change (scheduled rollouts, rollout_conflict)
and the circuit breaker (an extension, ADR 0016). Time comes from an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flags.rollouts import clock
from flags.rollouts.scheduler import run_due
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def now() -> Iterator[Clock]:
    frozen = Clock()
    with clock.using_clock(frozen):
        yield frozen


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


STEPS = [
    {"at": at(10), "percentage": 10},
    {"at": at(20), "percentage": 50},
    {"at": at(30), "percentage": 100},
]


def schedule(api: Any, key: str = "checkout", **body: Any) -> Any:
    return api.post(
        f"/v1/flags/{key}/rollouts",
        {"target": "default", "variant": "on", "steps": STEPS, **body},
        format="json",
    )


def test_rollout_create__201_with_id_status_current_step_and_steps(api, tenant, now):
    make_flag(tenant, state="on", default={"variant": "off"})
    response = schedule(api)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled" and body["current_step"] == 0
    assert [(s["at"], s["percentage"], s["state"]) for s in body["steps"]] == [
        (at(10), 10, "pending"),
        (at(20), 50, "pending"),
        (at(30), 100, "pending"),
    ]
    assert body["target"] == "default" and body["variant"] == "on" and body["next_step_at"] == at(10)
    assert response["Location"] == f"/v1/flags/checkout/rollouts/{body['id']}"
    listed = api.get("/v1/flags/checkout/rollouts").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    assert api.get(f"/v1/flags/checkout/rollouts/{body['id']}").json()["id"] == body["id"]
    events = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    assert events[-1]["type"] == "flag.rollout_scheduled" and events[-1]["key"] == "checkout"


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"at": at(-5), "percentage": 10}], "steps[0].at"),
        ([{"at": at(10), "percentage": 10}, {"at": at(10), "percentage": 20}], "steps[1].at"),
        ([{"at": at(10), "percentage": 50}, {"at": at(20), "percentage": 20}], "steps[1].percentage"),
        ([{"at": at(10), "percentage": -1}], "steps[0].percentage"),
        ([{"at": "tomorrow", "percentage": 10}], "steps[0].at"),
        ("many", "steps"),
    ],
)
def test_rollout_create__bad_steps__422_naming_the_step(api, tenant, now, steps, field):
    make_flag(tenant)
    response = schedule(api, steps=steps)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["details"]["fields"]


def test_rollout_create__unknown_rule_or_variant_or_field__422(api, tenant, now):
    make_flag(tenant)
    response = schedule(api, target="rule:nope", variant="blue", color="red")
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]["fields"]) == {"target", "variant", "color"}


def test_rollout_create__second_plan_for_the_target__409_rollout_conflict(api, tenant, now):
    make_flag(tenant)
    first = schedule(api).json()
    response = schedule(api)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "rollout_conflict"
    assert response.json()["error"]["details"]["rollout"] == first["id"]


def test_rollout_routes__unknown_or_other_tenants_flag__404(api, other_api, tenant, other_tenant, now):
    make_flag(other_tenant)
    assert schedule(api, key="nope").status_code == 404
    assert schedule(api).status_code == 404, "another tenant's flag is 404"
    theirs = schedule(other_api).json()
    make_flag(tenant)
    assert api.post(f"/v1/flags/checkout/rollouts/{theirs['id']}/pause").status_code == 404
    assert api.get(f"/v1/flags/checkout/rollouts/{theirs['id']}").status_code == 404


def test_rollout_create__needs_flags_write(make_api, tenant, now):
    make_flag(tenant)
    reader = make_api(tenant, ["flags:read"])
    assert schedule(reader).status_code == 403
    assert reader.get("/v1/flags/checkout/rollouts").status_code == 200


def test_manual_put_patch_of_the_driven_part__409_rollout_conflict_until_paused(api, tenant, now):
    make_flag(tenant, default={"variant": "off"})
    plan = schedule(api).json()
    response = api.patch("/v1/flags/checkout", {"default": {"variant": "on"}}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "rollout_conflict"
    assert response.json()["error"]["details"]["rollout"] == plan["id"]
    assert api.patch("/v1/flags/checkout", {"name": "Checkout"}, format="json").status_code == 200

    paused = api.post(f"/v1/flags/checkout/rollouts/{plan['id']}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert api.patch("/v1/flags/checkout", {"default": {"variant": "on"}}, format="json").status_code == 200
    assert api.post(f"/v1/flags/checkout/rollouts/{plan['id']}/pause").status_code == 409
    resumed = api.post(f"/v1/flags/checkout/rollouts/{plan['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "scheduled"
    aborted = api.post(f"/v1/flags/checkout/rollouts/{plan['id']}/abort")
    assert aborted.status_code == 200 and aborted.json()["status"] == "aborted"
    assert api.patch("/v1/flags/checkout", {"default": {"variant": "off"}}, format="json").status_code == 200


def test_steps_applied_by_the_scheduler__evaluation_serves_the_new_split(
    api, tenant, now, django_capture_on_commit_callbacks
):
    make_flag(tenant, state="on", default={"variant": "off"})
    plan = schedule(api).json()
    users = [{"id": f"u-{i}"} for i in range(400)]

    def share_on() -> float:
        answers = [
            api.post("/v1/evaluate", {"flag_key": "checkout", "user": u}, format="json").json() for u in users
        ]
        return sum(a["variant"] == "on" for a in answers) / len(users)

    assert share_on() == 0
    now.at = T0 + timedelta(minutes=20, seconds=1)
    with django_capture_on_commit_callbacks(execute=True):  # the after-commit cache invalidation
        run_due(now())
    assert 0.4 < share_on() < 0.6
    body = api.get(f"/v1/flags/checkout/rollouts/{plan['id']}").json()
    assert body["status"] == "running" and body["current_step"] == 2
    assert [s["state"] for s in body["steps"]] == ["overtaken", "applied", "pending"]
    versions = api.get("/v1/flags/checkout/versions").json()["results"]
    assert versions[0]["actor"] == "system:rollout"
    audit = api.get("/v1/audit?actor=system:rollout").json()["results"]
    assert [a["action"] for a in audit] == ["rollout_progress"]
    events = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    assert events[-1]["type"] == "flag.rollout_progress" and events[-1]["actor"] == "system:rollout"


def test_automation_breaker__put_get__holds_the_plans_and_is_shown_on_each(api, tenant, now):
    make_flag(tenant, default={"variant": "off"})
    plan = schedule(api).json()
    assert api.get("/v1/automation").json()["paused"] is False
    assert api.put("/v1/automation", {"paused": True}, format="json").status_code == 422, (
        "a reason is required"
    )
    response = api.put("/v1/automation", {"paused": True, "reason": "incident 42"}, format="json")
    assert response.status_code == 200
    assert response.json()["paused"] is True and response.json()["reason"] == "incident 42"
    held = api.get(f"/v1/flags/checkout/rollouts/{plan['id']}").json()["held_by_breaker"]
    assert held["by"] == "tenant" and held["reason"] == "incident 42" and held["since"]
    now.at = T0 + timedelta(minutes=11)
    run_due(now())
    assert api.get(f"/v1/flags/checkout/rollouts/{plan['id']}").json()["current_step"] == 0
    assert api.put("/v1/automation", {"paused": False}, format="json").json()["paused"] is False
    run_due(now())
    assert api.get(f"/v1/flags/checkout/rollouts/{plan['id']}").json()["current_step"] == 1
    audit = api.get("/v1/audit?entity=automation").json()["results"]
    assert len(audit) == 2


def test_automation_breaker__needs_admin(make_api, tenant):
    writer = make_api(tenant, ["flags:write"])
    assert writer.get("/v1/automation").status_code == 403
    assert writer.put("/v1/automation", {"paused": True, "reason": "x"}, format="json").status_code == 403
