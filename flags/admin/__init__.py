"""The flags admin: list, editor, actions, history and preview. Every write calls flags.services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.admin import builder, rollouts, usage, views
from flags.admin import killswitches as killswitches  # registers the "Kill switches" page
from flags.admin.change_requests import (  # also registers the change requests' admin
    opened_message,
    protected_notice,
    review_url,
)
from flags.admin.display import ArchivedFilter, TagFilter, rollout_summary
from flags.admin.forms import NEW_FLAG_INITIAL, FlagForm
from flags.admin.in_words import flag_in_words
from flags.admin.links import links_for
from flags.admin.usage import StaleFilter
from flags.admin.vocabulary import format_datetime
from flags.approvals import ApprovalRequired
from flags.killswitch import killed_by
from flags.models import Flag
from flags.services import (
    flag_archive,
    flag_create,
    flag_protect,
    flag_restore,
    flag_set_state,
    flag_update,
)
from kernel.admin_fields import ReasonField
from kernel.admin_writes import ServiceWriteAdmin, actor_of
from kernel.change_reason import parse_change_reason
from kernel.context import acting_as
from kernel.errors import as_api_error
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin
from tenancy.change_policy import require_reason_by_policy
from tenancy.models import Role

EDIT_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (
        None,
        {"fields": ("tenant", "key", "name", "description", "type", "state", "kill_category", "protected")},
    ),
    ("Lifecycle", {"fields": ("lifecycle", "remove_after")}),
    ("Variants", {"fields": ("variants", "off_variant")}),
    ("Targets", {"fields": ("targets_allow", "targets_allow_variant", "targets_deny")}),
    ("Rules and default", {"fields": ("rules", "default")}),
    ("Advanced", {"fields": ("prerequisites", "bucket_by", "tags"), "classes": ("collapse",)}),
]
STATUS_FIELDS = ("rollout", "scheduled_rollout", "version", "last_change")
VIEW_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (
        None,
        {
            "fields": (
                "tenant",
                "key",
                "name",
                "description",
                "type",
                "tag_list",
                "kill_category",
                "protected",
                "lifecycle",
                "remove_after",
            )
        },
    ),
    ("Usage", {"fields": ("served",)}),
    ("Who gets what", {"fields": ("in_words",), "classes": ("flagsvc-words-box",)}),
    ("Status", {"fields": STATUS_FIELDS}),
    ("As JSON, for developers", {"fields": ("document_json",), "classes": ("collapse",)}),
]


_OPENED = "_flagsvc_change_request_opened"


def _pre(value: Any) -> SafeString:
    return format_html('<pre class="flagsvc-pre">{}</pre>', json.dumps(value, ensure_ascii=False, indent=2))


class FlagActionForm(ActionForm):
    """The list's action bar, with the reason every action's audit entries carry."""

    reason = ReasonField(label="Reason", help_text="")


@admin.register(Flag)
class FlagAdmin(ServiceWriteAdmin[Flag], TenantScopedAdmin[Flag]):
    form = FlagForm
    # Version and rule count live on the flag's page; the lifecycle badge shares the Last evaluated
    # column and the protected mark the State column: at 1,280 px the list fits without scrolling.
    list_display = ("key", "tenant", "state_badge", "last_change", "last_evaluated", "rollout", "plan")
    list_filter = (
        TenantListFilter,
        "state",
        "type",
        TagFilter,
        ArchivedFilter,
        StaleFilter,
        "lifecycle",
        "protected",
    )
    search_fields = ("key", "name", "description")
    search_help_text = "Search by key, name or description."
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    ordering = ("tenant_id", "key")  # the (tenant, key) index; a sort by slug spills at 10,000 flags
    actions = ("turn_on", "turn_off", "protect", "archive", "restore")
    edit_role = Role.EDITOR
    action_form = FlagActionForm

    class Media:
        css = {
            "all": (
                "flags/admin/flag_admin.css",
                "flags/admin/builder.css",
                "flags/admin/rollouts.css",
                "flags/admin/flag_words.css",
            )
        }
        js = (
            "flags/admin/json_editor.js",
            "flags/admin/builder_kit.js",
            "flags/admin/condition_builder.js",
            "flags/admin/flag_builder.js",
            "flags/admin/attribute_rows.js",
            "flags/admin/flag_preview.js",
        )

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
            fieldsets.append(("Usage", {"fields": ("served",)}))
            fieldsets.append(("Status", {"fields": (*STATUS_FIELDS, "expected_version")}))
        fieldsets.append((None, {"fields": ("reason",), "classes": ("flagsvc-reason-row",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        return ("tenant", "key", "type", *STATUS_FIELDS, "served") if obj is not None else ()

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
        switch = killed_by(tenant=flag.tenant_id, flag=flag) if request.method == "GET" else None
        if switch is not None:
            self.message_user(
                request,
                f"Killed by switch {switch.category} (engaged {format_datetime(switch.engaged_at)} by "
                f"{switch.engaged_by}: {switch.reason}). Releasing the switch puts its state back, unless "
                "you change the state here meanwhile.",
                messages.ERROR,
            )
        if flag.protected and request.method == "GET":  # four eyes (flags/approvals.py)
            self.message_user(request, protected_notice(flag), messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def log_change(self, request: HttpRequest, obj: Flag, message: Any) -> Any:
        if isinstance(getattr(request, _OPENED, None), ApprovalRequired):
            return None  # nothing was changed: the change request's audit entry says what happened
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Flag) -> HttpResponse:
        """A save the gate stopped goes to the change request's review page, not "changed successfully"."""
        opened = getattr(request, _OPENED, None)
        if isinstance(opened, ApprovalRequired):
            self.message_user(request, opened_message(opened), messages.WARNING)
            return HttpResponseRedirect(review_url(opened.change_request))
        return super().response_change(request, obj)

    # --- columns and read-only displays ------------------------------------------------------

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: Flag) -> SafeString:
        state = "archived" if obj.archived_at is not None else obj.state
        badge = format_html('<span class="flagsvc-state flagsvc-state-{}">{}</span>', state, state)
        if not obj.protected:
            return badge
        return format_html(
            '{} <span class="flagsvc-protected" title="Protected: changes need another person\'s approval">'
            "protected</span>",
            badge,
        )

    @admin.display(description="Last change", ordering="updated_at")
    def last_change(self, obj: Flag) -> str:
        when = format_datetime(obj.updated_at)
        return f"{when} by {obj.updated_by}" if obj.updated_by else when

    # Usage and lifecycle (flags/admin/usage.py): the page's usage in three queries per tenant.
    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        usage.attach_usage(list(changelist.result_list))
        return changelist

    @admin.display(description="Last evaluated")
    def last_evaluated(self, obj: Flag) -> SafeString:
        return format_html("{}<br>{}", usage.last_evaluated_column(obj), usage.lifecycle_badge(obj))

    @admin.display(description="Lifecycle", ordering="lifecycle")
    def lifecycle_badge(self, obj: Flag) -> SafeString:
        return usage.lifecycle_badge(obj)

    @admin.display(description="Served")
    def served(self, obj: Flag) -> SafeString:
        return usage.usage_panel(obj)

    @admin.display(description="Rollout")
    def rollout(self, obj: Flag) -> str:
        return rollout_summary(obj)

    # Scheduled rollouts (ADR 0016): the list's badge, the flag page's status line, the plans' page.
    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return super().get_queryset(request).prefetch_related(rollouts.active_plans_prefetch())

    @admin.display(description="Plan")
    def plan(self, obj: Flag) -> SafeString | str:
        return rollouts.list_badge(obj)

    @admin.display(description="Scheduled rollout")
    def scheduled_rollout(self, obj: Flag) -> SafeString:
        return rollouts.change_page_summary(obj)

    @admin.display(description="In words")
    def in_words(self, obj: Flag) -> SafeString:
        return flag_in_words(obj.content(), links_for(obj.tenant_id), archived=obj.archived_at is not None)

    @admin.display(description="Tags")
    def tag_list(self, obj: Flag) -> str:
        return ", ".join(str(tag) for tag in obj.tags or []) or "none"

    @admin.display(description="Flag document")
    def document_json(self, obj: Flag) -> SafeString:
        return _pre(obj.content())

    # --- writes through the services --------------------------------------------------------

    def write(self, request: HttpRequest, form: FlagForm, change: bool) -> Flag:
        document = form.document()
        if change:
            flag: Flag = form.instance
            try:
                return flag_update(
                    tenant=flag.tenant,
                    key=flag.key,
                    data=document,
                    actor=actor_of(request),
                    expected_version=form.cleaned_data.get("expected_version"),
                )
            except (
                ApprovalRequired
            ) as exc:  # four eyes: kept in the admin's transaction, shown by response_change
                setattr(request, _OPENED, exc)
                return Flag.objects.for_tenant(flag.tenant_id).get(pk=flag.pk)
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
        """Run one service per selected flag that the person may change; report what happened.

        The action bar's reason (FlagActionForm) goes on every audit entry; a tenant that requires
        reasons refuses its flags without one."""
        access = self.access(request)
        changed, skipped, failed = [], 0, []
        try:
            reason = parse_change_reason(request.POST.get("reason"))
        except Exception as exc:
            self.message_user(request, f"Nothing was changed: {exc}", messages.ERROR)
            return
        for flag in queryset.select_related("tenant"):
            if not access.can(flag.tenant_id, Role.EDITOR) or not applies(flag):
                skipped += 1
                continue
            try:
                require_reason_by_policy(flag.tenant, reason)
                with acting_as(None, reason=reason):
                    call(flag)
            except ApprovalRequired as exc:  # four eyes: the change waits in a change request
                self.message_user(request, opened_message(exc), messages.WARNING)
                continue
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

    @admin.action(description="Protect selected flags (changes need approval)", permissions=["change"])
    def protect(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = actor_of(request)
        self._each(
            request, queryset, "Protected (each later change needs another person's approval)",
            lambda f: f.archived_at is None and not f.protected,
            lambda f: flag_protect(tenant=f.tenant, key=f.key, actor=actor),
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
            path("builder-choices/", wrap(self.builder_choices_view), name="flags_flag_builder_choices"),
            path("<path:object_id>/rollback/", wrap(self.rollback_view), name="flags_flag_rollback"),
            path("<path:object_id>/rollouts/", wrap(self.rollouts_view), name="flags_flag_rollouts"),
            *super().get_urls(),
        ]

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return views.history_response(self, request, self.get_object(request, unquote(object_id)))

    def builder_choices_view(self, request: HttpRequest) -> HttpResponse:
        return builder.choices_response(self, request)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """The flag editor's data (flag_builder.js): the tenant's choices, the last save's problems."""
        context["flag_builder"] = builder.flag_builder_data(self, request, context, kwargs.get("obj"))
        return super().render_change_form(request, context, *args, **kwargs)

    def rollback_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return views.rollback_response(self, request, self.get_object(request, unquote(object_id)))

    def rollouts_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return rollouts.rollouts_response(self, request, self.get_object(request, unquote(object_id)))
