"""The "Kill switches" page (api.md, Safe change; ADR kill switches): owners (and superusers) of a tenant
see the kill categories its flags use, engaged ones first and highlighted, and engage or release one
after a confirmation page that names the flags it will change and asks why. The writes are
`flags.killswitch`'s services, as for the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from flags.admin.vocabulary import format_datetime
from flags.attributes import kill_category_problem
from flags.killswitch import (
    engaged_switches,
    kill_categories_in_use,
    killswitch_engage,
    killswitch_release,
)
from flags.models import Flag, FlagState, KillSwitch
from kernel.admin_fields import ReasonField
from kernel.admin_writes import actor_of
from kernel.errors import ApiError, Invalid, as_api_error
from tenancy.admin_scoping import TenantScopedAdmin
from tenancy.change_policy import require_reason_by_policy
from tenancy.models import Role, Tenant


class EngageForm(forms.Form):
    reason = ReasonField(
        label="Reason (required)",
        help_text="Why you engage it: the incident, the ticket. Stored on every flag's audit entry.",
    )


class ReleaseForm(forms.Form):
    reason = ReasonField(help_text="Why now (stored on every flag's audit entry).")


@admin.register(KillSwitch)
class KillSwitchAdmin(TenantScopedAdmin[KillSwitch]):
    """Not a model list: one page per person, the switches of the tenants they own (ADR 0010 roles)."""

    view_role = Role.OWNER
    edit_role = Role.OWNER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: KillSwitch | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.board_view), name="flags_killswitch_changelist"),
            path(
                "<int:tenant_id>/<str:category>/engage/",
                wrap(self.engage_view),
                name="flags_killswitch_engage",
            ),
            path(
                "<int:tenant_id>/<str:category>/release/",
                wrap(self.release_view),
                name="flags_killswitch_release",
            ),
        ]

    # --- pages ------------------------------------------------------------------------------

    def _owned_tenant(self, request: HttpRequest, tenant_id: int) -> Tenant:
        """A tenant the person owns; any other is 404 (never say it exists)."""
        if not self.access(request).can(tenant_id, Role.OWNER):
            raise Http404("No such tenant among yours.")
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise Http404("No such tenant.")
        return tenant

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "has_view_permission": True,
            **extra,
        }

    def board_view(self, request: HttpRequest) -> HttpResponse:
        access = self.access(request)
        if not access.can_anywhere(Role.OWNER):
            raise PermissionDenied
        boards = []
        for tenant in access.tenants(Role.OWNER).order_by("slug"):
            in_use = kill_categories_in_use(tenant=tenant)
            engaged = {switch["category"]: switch for switch in engaged_switches(tenant=tenant)}
            for switch in KillSwitch.objects.for_tenant(tenant).filter(category__in=engaged):
                engaged[switch.category]["since"] = format_datetime(switch.engaged_at)
            categories = sorted(set(in_use) | set(engaged), key=lambda c: (c not in engaged, c))
            boards.append(
                {
                    "tenant": tenant,
                    "categories": [
                        {"name": c, "flags": in_use.get(c, []), "engaged": engaged.get(c)} for c in categories
                    ],
                }
            )
        context = self._context(request, "Kill switches", boards=boards)
        return TemplateResponse(request, "admin/flags/killswitch/board.html", context)

    def engage_view(self, request: HttpRequest, tenant_id: int, category: str) -> HttpResponse:
        tenant = self._owned_tenant(request, tenant_id)
        if kill_category_problem(category) is not None:
            raise Http404("No such kill category.")
        flags = kill_categories_in_use(tenant=tenant).get(category, [])
        if not flags:
            raise Http404("No live flag of this tenant names this kill category.")
        form = EngageForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if not form.cleaned_data.get("reason"):
                    raise Invalid({"reason": ["required: say why you engage the kill switch"]})
                _, killed = killswitch_engage(
                    tenant=tenant,
                    category=category,
                    actor=actor_of(request),
                    reason=form.cleaned_data["reason"],
                )
            except Exception as exc:
                if not self._show_error(request, form, exc):
                    raise
            else:
                turned = ", ".join(killed) if killed else "none (all were off already)"
                messages.success(
                    request, f"Kill switch {category} engaged in {tenant.slug}. Turned off: {turned}."
                )
                return HttpResponseRedirect(reverse("admin:flags_killswitch_changelist"))
        context = self._context(
            request,
            f"Engage kill switch {category}?",
            tenant=tenant,
            category=category,
            form=form,
            turning_off=[f for f in flags if f.state == FlagState.ON],
            already_off=[f for f in flags if f.state != FlagState.ON],
        )
        return TemplateResponse(request, "admin/flags/killswitch/engage.html", context)

    def release_view(self, request: HttpRequest, tenant_id: int, category: str) -> HttpResponse:
        tenant = self._owned_tenant(request, tenant_id)
        switch = next((s for s in engaged_switches(tenant=tenant) if s["category"] == category), None)
        if switch is None:
            raise Http404("This kill switch is not engaged.")
        engaged_at = KillSwitch.objects.for_tenant(tenant).get(category=category).engaged_at
        switch = {**switch, "since": format_datetime(engaged_at)}
        form = ReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data.get("reason")
            try:
                require_reason_by_policy(tenant, reason)
                released = killswitch_release(
                    tenant=tenant, category=category, actor=actor_of(request), reason=reason
                )
            except Exception as exc:
                if not self._show_error(request, form, exc):
                    raise
            else:
                restored = ", ".join(released.restored) or "none"
                messages.success(
                    request, f"Kill switch {category} released in {tenant.slug}. Back on: {restored}."
                )
                for key, why in sorted(released.kept.items()):
                    messages.warning(request, f"{key} left as it is: {why}.")
                return HttpResponseRedirect(reverse("admin:flags_killswitch_changelist"))
        flags = {f.key: f for f in Flag.objects.for_tenant(tenant).filter(key__in=switch["flags"])}
        context = self._context(
            request,
            f"Release kill switch {category}?",
            tenant=tenant,
            category=category,
            switch=switch,
            form=form,
            flags=[flags[key] for key in switch["flags"] if key in flags],
        )
        return TemplateResponse(request, "admin/flags/killswitch/release.html", context)

    @staticmethod
    def _show_error(request: HttpRequest, form: forms.Form, exc: Exception) -> bool:
        """A service's refusal at the reason field (or above the form); False: not ours to show."""
        err = as_api_error(exc)
        if err is None:
            return False
        fields = err.details.get("fields") if isinstance(err, ApiError) else None
        if isinstance(fields, dict) and "reason" in fields:
            for problem in fields["reason"]:
                form.add_error("reason", problem)
        else:
            form.add_error(None, err.message)
        return True
