"""The flags admin: list, editor, actions, history and preview. Every write calls flags.services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.admin import views
from flags.admin.display import ArchivedFilter, TagFilter, rollout_summary
from flags.admin.forms import NEW_FLAG_INITIAL, FlagForm
from flags.models import Flag
from flags.services import flag_archive, flag_create, flag_restore, flag_set_state, flag_update
from kernel.admin_writes import ServiceWriteAdmin, actor_of
from kernel.errors import as_api_error
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin
from tenancy.models import Role

EDIT_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (None, {"fields": ("tenant", "key", "name", "description", "type", "state")}),
    ("Variants", {"fields": ("variants", "off_variant")}),
    ("Targets", {"fields": ("targets_allow", "targets_allow_variant", "targets_deny")}),
    ("Rules and default", {"fields": ("rules", "default")}),
    ("Advanced", {"fields": ("prerequisites", "bucket_by", "tags"), "classes": ("collapse",)}),
]
STATUS_FIELDS = ("rollout", "version", "last_change")
VIEW_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (None, {"fields": ("tenant", "key", "name", "description", "type", "state")}),
    (
        "Definition",
        {"fields": ("variants_json", "off_variant", "targets_json", "rules_json", "default_json")},
    ),
    ("Advanced", {"fields": ("prerequisites_json", "bucket_by", "tags")}),
    ("Status", {"fields": STATUS_FIELDS}),
]


def _pre(value: Any) -> SafeString:
    return format_html('<pre class="flagsvc-pre">{}</pre>', json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(Flag)
class FlagAdmin(ServiceWriteAdmin[Flag], TenantScopedAdmin[Flag]):
    form = FlagForm
    list_display = ("key", "tenant", "state_badge", "version", "last_change", "rule_count", "rollout")
    list_filter = (TenantListFilter, "state", "type", TagFilter, ArchivedFilter)
    search_fields = ("key", "name", "description")
    search_help_text = "Search by key, name or description."
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    ordering = ("tenant_id", "key")  # the (tenant, key) index; a sort by slug spills at 10,000 flags
    actions = ("turn_on", "turn_off", "archive", "restore")
    edit_role = Role.EDITOR

    class Media:
        css = {"all": ("flags/admin/flag_admin.css",)}
        js = ("flags/admin/json_editor.js", "flags/admin/rule_builder.js", "flags/admin/flag_preview.js")

    def has_change_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        """An archived flag is read-only until restored (the services refuse to change it)."""
        if obj is not None and obj.archived_at is not None:
            return False
        return super().has_change_permission(request, obj)

    # --- form layout -------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        if obj is not None and not self.has_change_permission(request, obj):
            return VIEW_FIELDSETS
        fieldsets = list(EDIT_FIELDSETS)
        if obj is not None:
            fieldsets.append(("Status", {"fields": (*STATUS_FIELDS, "expected_version")}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        return ("tenant", "key", "type", *STATUS_FIELDS) if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {**NEW_FLAG_INITIAL, **super().get_changeform_initial_data(request)}

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        flag = self.get_object(request, unquote(object_id))
        if flag.archived_at is not None and request.method == "GET":
            self.message_user(
                request, "This flag is archived: restore it (list action) to change it.", messages.WARNING
            )
        return super().change_view(request, object_id, form_url, extra_context)

    # --- columns and read-only displays ------------------------------------------------------

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: Flag) -> SafeString:
        state = "archived" if obj.archived_at is not None else obj.state
        return format_html('<span class="flagsvc-state flagsvc-state-{}">{}</span>', state, state)

    @admin.display(description="Last change", ordering="updated_at")
    def last_change(self, obj: Flag) -> str:
        when = timezone.localtime(obj.updated_at).strftime("%Y-%m-%d %H:%M")
        return f"{when} by {obj.updated_by}" if obj.updated_by else when

    @admin.display(description="Rules")
    def rule_count(self, obj: Flag) -> int:
        return len(obj.rules) if isinstance(obj.rules, list) else 0

    @admin.display(description="Rollout")
    def rollout(self, obj: Flag) -> str:
        return rollout_summary(obj)

    @admin.display(description="Variants")
    def variants_json(self, obj: Flag) -> SafeString:
        return _pre(obj.variants)

    @admin.display(description="Targets")
    def targets_json(self, obj: Flag) -> SafeString:
        return _pre(obj.targets)

    @admin.display(description="Rules")
    def rules_json(self, obj: Flag) -> SafeString:
        return _pre(obj.rules)

    @admin.display(description="Default (no rule matched)")
    def default_json(self, obj: Flag) -> SafeString:
        return _pre(obj.default)

    @admin.display(description="Prerequisites")
    def prerequisites_json(self, obj: Flag) -> SafeString:
        return _pre(obj.prerequisites)

    # --- writes through the services --------------------------------------------------------

    def write(self, request: HttpRequest, form: FlagForm, change: bool) -> Flag:
        document = form.document()
        if change:
            flag: Flag = form.instance
            return flag_update(
                tenant=flag.tenant,
                key=flag.key,
                data=document,
                actor=actor_of(request),
                expected_version=form.cleaned_data.get("expected_version"),
            )
        created, _ = flag_create(tenant=form.cleaned_data["tenant"], data=document, actor=actor_of(request))
        return created

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Flag],
        done: str,
        applies: Callable[[Flag], bool],
        call: Callable[[Flag], object],
    ) -> None:
        """Run one service per selected flag that the person may change; report what happened."""
        access = self.access(request)
        changed, skipped, failed = [], 0, []
        for flag in queryset.select_related("tenant"):
            if not access.can(flag.tenant_id, Role.EDITOR) or not applies(flag):
                skipped += 1
                continue
            try:
                call(flag)
            except Exception as exc:
                err = as_api_error(exc)
                if err is None:
                    raise
                failed.append(f"{flag.key}: {err.message}")
                continue
            changed.append(flag.key)
        if changed:
            self.message_user(request, f"{done}: {', '.join(changed)}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} flag(s) skipped (already so, or read-only for you).", messages.WARNING
            )
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Turn selected flags on", permissions=["change"])
    def turn_on(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = actor_of(request)
        self._each(
            request, queryset, "Turned on",
            lambda f: f.archived_at is None and f.state != "on",
            lambda f: flag_set_state(tenant=f.tenant, key=f.key, state="on", actor=actor),
        )  # fmt: skip

    @admin.action(description="Turn selected flags off", permissions=["change"])
    def turn_off(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = actor_of(request)
        self._each(
            request, queryset, "Turned off",
            lambda f: f.archived_at is None and f.state != "off",
            lambda f: flag_set_state(tenant=f.tenant, key=f.key, state="off", actor=actor),
        )  # fmt: skip

    @admin.action(description="Archive selected flags (no longer evaluated)", permissions=["change"])
    def archive(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = actor_of(request)
        self._each(
            request, queryset, "Archived",
            lambda f: f.archived_at is None,
            lambda f: flag_archive(tenant=f.tenant, key=f.key, actor=actor),
        )  # fmt: skip

    @admin.action(description="Restore selected archived flags", permissions=["change"])
    def restore(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = actor_of(request)
        self._each(
            request, queryset, "Restored",
            lambda f: f.archived_at is not None,
            lambda f: flag_restore(tenant=f.tenant, key=f.key, actor=actor),
        )  # fmt: skip

    # --- history, rollback (the preview panel's view is evaluation.admin_views) ---------------------

    def get_urls(self) -> list[URLPattern]:
        def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(view)

        return [
            path("<path:object_id>/rollback/", wrap(self.rollback_view), name="flags_flag_rollback"),
            *super().get_urls(),
        ]

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return views.history_response(self, request, self.get_object(request, unquote(object_id)))

    def rollback_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return views.rollback_response(self, request, self.get_object(request, unquote(object_id)))
