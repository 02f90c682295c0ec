"""A rollout plan and the automation circuit breaker (ADR 0016). Imported by `flags.models`."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.scoping import TenantScopedManager

ROLLOUT_ACTOR = "system:rollout"
MAX_STEPS = 20


class RolloutStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


# The scheduler applies steps of these; a manual write to what they drive is 409 `rollout_conflict`.
ACTIVE = (RolloutStatus.SCHEDULED, RolloutStatus.RUNNING)
# One open plan per target: a paused plan can be resumed, so it still holds its target.
OPEN = (*ACTIVE, RolloutStatus.PAUSED)


class RolloutPlan(models.Model):
    """Steps `[{"at", "percentage", "state", "applied_at", "late", "flag_version"}]`; `current_step` is
    the number of steps done (applied or overtaken), so also the index of the next one."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    flag = models.ForeignKey("flags.Flag", on_delete=models.CASCADE, related_name="rollout_plans")
    target = models.CharField(max_length=140)  # "default" | "rule:<id>"
    variant = models.CharField(max_length=128)
    # What the rest of the users keep getting: [{"variant", "weight"}] taken from the target's serve
    # when the plan was made (the target variant left out).
    baseline = models.JSONField(default=list)
    steps = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=RolloutStatus.choices, default=RolloutStatus.SCHEDULED)
    current_step = models.PositiveIntegerField(default=0)
    # When the next step is due (null when none is left): the scheduler's index.
    next_at = models.DateTimeField(null=True, blank=True)
    status_detail = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["flag", "target"],
                condition=Q(status__in=[s.value for s in OPEN]),
                name="rollout_one_open_plan_per_target",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_at"], name="rollout_due_idx"),
            models.Index(fields=["tenant", "flag"], name="rollout_tenant_flag_idx"),
        ]

    def __str__(self) -> str:
        return f"rollout {self.pk} of {self.flag_id} ({self.target} → {self.variant})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def rule_id(self) -> str | None:
        return self.target.removeprefix("rule:") if self.target.startswith("rule:") else None

    def to_document(self, flag_key: str) -> dict[str, Any]:
        """The plan as the API shows it (without `held_by_breaker`, which `selectors` adds)."""
        upcoming = self.steps[self.current_step] if self.current_step < len(self.steps) else None
        return {
            "id": str(self.pk),
            "flag": flag_key,
            "target": self.target,
            "variant": self.variant,
            "status": self.status,
            "current_step": self.current_step,
            "steps": list(self.steps),
            "next_step_at": upcoming["at"] if upcoming and self.is_active else None,
            "status_detail": self.status_detail or None,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


class AutomationBreaker(models.Model):
    """The circuit breaker of automation: one row per tenant, one for the installation (tenant null).

    A row, not only a setting, so that operators flip it without a restart (`automation_breaker`,
    `PUT /v1/automation`, the admin). While either applies to a tenant, its plans get no step.
    """

    INSTALLATION = "installation"

    # "installation" | "tenant:<id>". No foreign key to the tenant: the installation's row has none, and a
    # row that belongs to no tenant cannot sit behind the fail-closed tenant manager; selectors name the
    # scope of the tenant they ask about every time.
    scope = models.CharField(max_length=64, unique=True)
    engaged = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True, default="")
    changed_by = models.CharField(max_length=200, blank=True, default="")
    changed_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    def __str__(self) -> str:
        return f"{self.scope}: {'engaged' if self.engaged else 'released'}"

    def to_document(self) -> dict[str, Any]:
        return {
            "paused": self.engaged,
            "reason": self.reason or None,
            "since": iso(self.changed_at) if self.engaged else None,
            "changed_at": iso(self.changed_at),
            "changed_by": self.changed_by or None,
        }
