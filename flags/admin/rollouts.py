"""The flag admin's rollout page: the plans of one flag on a time line, a plan editor (no JSON typing),
pause / resume / abort, and the circuit breaker (ADR 0016). Every write calls `flags.rollouts.services`.

Viewers see the page; editors schedule and steer plans; owners flip the tenant's breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.admin.vocabulary import format_datetime
from flags.models import Flag
from flags.rollouts import clock, selectors, services
from flags.rollouts.models import ACTIVE, MAX_STEPS, RolloutPlan
from kernel.admin_writes import actor_of
from kernel.errors import Invalid, as_api_error
from tenancy.models import Role

if TYPE_CHECKING:
    from flags.admin import FlagAdmin

EDITOR_ROWS = 5


def active_plans_prefetch() -> Prefetch:
    """The flag list's badge reads these (one query for the page, not one per flag); built inside the
    admin request's tenant scope."""
    return Prefetch(
        "rollout_plans",
        queryset=RolloutPlan.objects.filter(status__in=ACTIVE).order_by("id"),
        to_attr="active_rollouts",
    )


STATE_WORDS = {"applied": "applied", "overtaken": "overtaken (worker was away)", "pending": "pending"}


def _when(value: str | None) -> str:
    return format_datetime(datetime.fromisoformat(value)) if value else ""


def plan_badge(plan: RolloutPlan) -> str:
    """One line for the flag list: `rolling out 25 % → 50 % at 2026-12-01 14:00 UTC` (or paused, held)."""
    done = plan.steps[plan.current_step - 1]["percentage"] if plan.current_step else 0
    upcoming = plan.steps[plan.current_step] if plan.current_step < len(plan.steps) else None
    where = "" if plan.target == "default" else f" ({plan.target})"
    if upcoming is None:
        return f"{plan.variant} at {done} %{where}"
    return (
        f"rolling out {plan.variant}{where} {done} % → {upcoming['percentage']} % at {_when(upcoming['at'])}"
    )


def list_badge(flag: Flag) -> SafeString | str:
    """The flag list's column: the active plans (prefetched as `active_rollouts` by FlagAdmin)."""
    plans: list[RolloutPlan] = getattr(flag, "active_rollouts", [])
    if not plans:
        return ""
    return format_html(
        '<span class="flagsvc-plan-badge" title="{}">{}</span>',
        "; ".join(plan_badge(plan) for plan in plans),
        "; ".join(plan_badge(plan).removeprefix("rolling out ") for plan in plans),
    )


def change_page_summary(flag: Flag) -> SafeString:
    """The flag page's status line: the open plans and a link to the rollout page."""
    url = reverse("admin:flags_flag_rollouts", args=[flag.pk])
    plans = [
        p
        for p in selectors.plan_list(tenant=flag.tenant, flag_id=flag.pk)
        if p.status in ("scheduled", "running", "paused")
    ]
    if not plans:
        return format_html('No scheduled rollout. <a href="{}">Plan a rollout</a>', url)
    lines = SafeString("")
    hold = selectors.breaker_hold(tenant_id=flag.tenant_id)
    if hold is not None:
        lines = format_html(
            '<strong class="flagsvc-held">Held by the circuit breaker since {}.</strong><br>',
            _when(hold["since"]),
        )
    for plan in plans:
        lines = format_html(
            '{}<span class="flagsvc-plan-status flagsvc-plan-{}">{}</span> {}<br>',
            lines,
            plan.status,
            plan.status,
            plan_badge(plan),
        )
    return format_html('{}<a href="{}">See the plans and the time line</a>', lines, url)


@dataclass(frozen=True)
class Marker:
    index: int
    percentage: Any
    at: str
    applied_at: str
    state: str
    late: bool
    left: float  # % along the line


@dataclass(frozen=True)
class PlanView:
    plan: RolloutPlan
    markers: list[Marker]
    now_left: float | None
    can_pause: bool
    can_resume: bool
    can_abort: bool


def _timeline(plan: RolloutPlan, now: datetime) -> tuple[list[Marker], float | None]:
    moments = [datetime.fromisoformat(step["at"]) for step in plan.steps]
    first, last = moments[0], moments[-1]
    span = (last - first).total_seconds()

    def left(moment: datetime) -> float:
        return 50.0 if span <= 0 else round(4 + 92 * (moment - first).total_seconds() / span, 2)

    markers = [
        Marker(
            index=i + 1,
            percentage=step["percentage"],
            at=_when(step["at"]),
            applied_at=_when(step.get("applied_at")),
            state=step.get("state", "pending"),
            late=bool(step.get("late")),
            left=left(moment),
        )
        for i, (step, moment) in enumerate(zip(plan.steps, moments, strict=True))
    ]
    now_left = left(now) if span > 0 and first <= now <= last else None
    return markers, now_left


def _plan_views(flag: Flag, now: datetime) -> list[PlanView]:
    views = []
    for plan in selectors.plan_list(tenant=flag.tenant, flag_id=flag.pk)[:20]:
        markers, now_left = _timeline(plan, now)
        views.append(
            PlanView(
                plan=plan,
                markers=markers,
                now_left=now_left,
                can_pause=plan.status in ("scheduled", "running"),
                can_resume=plan.status == "paused",
                can_abort=plan.status in ("scheduled", "running", "paused"),
            )
        )
    return views


def _targets(flag: Flag) -> list[tuple[str, str]]:
    choices = [("default", "Default (users no rule matched)")]
    for rule in flag.rules or []:
        if isinstance(rule, dict) and rule.get("id"):
            label = f"Rule {rule['id']}" + (f" — {rule['description']}" if rule.get("description") else "")
            choices.append((f"rule:{rule['id']}", label))
    return choices


def _submitted_plan(request: HttpRequest) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The editor's rows as an API body: empty rows are dropped; `datetime-local` values are UTC."""
    rows = []
    steps: list[dict[str, Any]] = []
    for i in range(MAX_STEPS):
        at, percentage = (
            request.POST.get(f"step-{i}-at", "").strip(),
            request.POST.get(f"step-{i}-percentage", "").strip(),
        )
        if i < EDITOR_ROWS or at or percentage:
            rows.append({"at": at, "percentage": percentage})
        if not at and not percentage:
            continue
        try:
            number: Any = float(percentage)
            number = int(number) if number.is_integer() else number
        except ValueError:
            number = percentage
        steps.append({"at": f"{at}:00Z" if len(at) == 16 else at, "percentage": number})
    body = {
        "target": request.POST.get("target", "default"),
        "variant": request.POST.get("variant", ""),
        "steps": steps,
    }
    return body, rows


def _field_words(field: str) -> str:
    """`steps[1].at` → `Step 2, time` (the editor's words for the API's field paths)."""
    if field.startswith("steps[") and "]" in field:
        index, _, rest = field[6:].partition("]")
        part = {".at": ", time", ".percentage": ", percentage"}.get(rest, "")
        return f"Step {int(index) + 1}{part}" if index.isdigit() else field
    return {"steps": "Steps", "target": "Target", "variant": "Variant"}.get(field, field)


def rollouts_response(model_admin: FlagAdmin, request: HttpRequest, flag: Flag) -> HttpResponse:
    if not model_admin.has_view_permission(request, flag):
        raise PermissionDenied
    access = model_admin.access(request)
    can_edit = flag.archived_at is None and access.can(flag.tenant_id, Role.EDITOR)
    can_flip = access.can(flag.tenant_id, Role.OWNER)
    url = reverse("admin:flags_flag_rollouts", args=[flag.pk])
    errors: dict[str, list[str]] = {}
    form: dict[str, Any] = {
        "target": "default",
        "variant": "",
        "rows": [{"at": "", "percentage": ""}] * EDITOR_ROWS,
    }
    if request.method == "POST":
        action = request.POST.get("action", "")
        actor = actor_of(request)
        allowed = (action in ("create", "pause", "resume", "abort") and can_edit) or (
            action in ("breaker-on", "breaker-off") and can_flip
        )
        if not allowed:
            raise PermissionDenied
        try:
            if action == "create":
                body, rows = _submitted_plan(request)
                form = {"target": body["target"], "variant": body["variant"], "rows": rows}
                plan = services.rollout_create(tenant=flag.tenant, key=flag.key, data=body, actor=actor)
                messages.success(request, f"Rollout plan {plan.pk} scheduled: {plan_badge(plan)}.")
                return HttpResponseRedirect(url)
            if action in ("pause", "resume", "abort") and request.POST.get("plan", "").isdigit():
                service = {
                    "pause": services.rollout_pause,
                    "resume": services.rollout_resume,
                    "abort": services.rollout_abort,
                }[action]
                plan = service(
                    tenant=flag.tenant, key=flag.key, plan_id=int(request.POST["plan"]), actor=actor
                )
                messages.success(request, f"Rollout plan {plan.pk} is now {plan.status}.")
                return HttpResponseRedirect(url)
            if action in ("breaker-on", "breaker-off"):
                services.breaker_set(
                    tenant=flag.tenant,
                    engaged=action == "breaker-on",
                    reason=request.POST.get("reason", ""),
                    actor=actor,
                )
                messages.success(
                    request,
                    "Automation paused for this tenant: no rollout step will be applied."
                    if action == "breaker-on"
                    else "Automation resumed for this tenant.",
                )
                return HttpResponseRedirect(url)
            messages.error(request, "Choose a plan.")
        except Invalid as exc:
            errors = exc.details.get("fields", {})
            messages.error(request, f"Nothing was changed: {exc.message}")
        except Exception as exc:
            err = as_api_error(exc)
            if err is None:
                raise
            messages.error(request, f"Nothing was changed: {err.message}")
    now = clock.now()
    own, installation = selectors.breaker_rows(tenant_id=flag.tenant_id)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Scheduled rollouts of {flag.key}",
        "subtitle": None,
        "opts": model_admin.opts,
        "original": flag,
        "plans": _plan_views(flag, now),
        "hold": selectors.breaker_hold(tenant_id=flag.tenant_id),
        "hold_since": _when((selectors.breaker_hold(tenant_id=flag.tenant_id) or {}).get("since")),
        "tenant_breaker": own,
        "installation_breaker": installation,
        "can_edit": can_edit,
        "can_flip": can_flip,
        "targets": _targets(flag),
        "variants": [v.get("key") for v in flag.variants or [] if isinstance(v, dict)],
        "form": form,
        "errors": [(_field_words(field), " ".join(texts)) for field, texts in errors.items()],
        "now": format_datetime(now),
        "now_input": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/flags/flag/rollouts.html", context)
