"""The segments admin. Writes call segments.services; a segment used by a live flag cannot go."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from flagsvc_sdk.engine import DefinitionError, validate_segment

from kernel.admin_fields import IdListField, JsonDocumentField, ReasonField
from kernel.admin_writes import ServiceForm, ServiceWriteAdmin, actor_of
from kernel.errors import ApiError
from kernel.timefmt import format_datetime
from segments.condition_words import condition_words
from segments.display import segment_in_words
from segments.mappers import segment_to_engine
from segments.models import Segment
from segments.selectors import segment_get
from segments.services import segment_create, segment_delete, segment_update
from segments.usage import segment_users
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin
from tenancy.change_policy import require_reason_by_policy
from tenancy.models import Role, Tenant

_USED_BY = "_flagsvc_used_by"

WHEN_HELP = (
    "Users (other than the excluded ids) match when this condition is true; empty means only the "
    'included ids match. A condition is {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]}, '
    '{"all": [...]}, {"any": [...]} or {"not": {...}} (rules.md, Conditions). Segments do not refer to '
    "other segments."
)


class SegmentForm(ServiceForm):
    included = IdListField(
        label="Included user ids", help_text="User ids, one per line, that are always in the segment."
    )
    excluded = IdListField(
        label="Excluded user ids",
        help_text="User ids, one per line, that the condition never matches (included ids still are).",
    )
    when = JsonDocumentField(kind="object_or_null", rows=6, label="Condition", help_text=WHEN_HELP)
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reason = ReasonField()

    class Meta:
        model = Segment
        fields = ("tenant", "key", "name", "description")
        help_texts = {
            "tenant": "The tenant that owns the segment. It cannot change later.",
            "key": "1-128 characters: letters, digits, '.', '_' or '-'. Rules refer to it as "
            '{"segment": "this-key"}; it cannot change later.',
            "name": "A short human name shown in lists.",
            "description": "Who is in this segment and why.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["expected_version"] = self.instance.version

    def document(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "key": data.get("key") if "key" in self.fields else self.instance.key,
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "included": data.get("included") or [],
            "excluded": data.get("excluded") or [],
            "when": data.get("when"),
        }

    def clean_document(self) -> None:
        document = self.document()
        tenant = self.cleaned_data.get("tenant") if "tenant" in self.fields else self.instance.tenant
        if isinstance(tenant, Tenant):
            try:
                require_reason_by_policy(tenant, self.cleaned_data.get("reason"))
            except ApiError as exc:
                self.add_api_error(exc)
        key = document["key"] if "key" in self.fields else None
        if isinstance(tenant, Tenant) and isinstance(key, str) and segment_get(tenant=tenant, key=key):
            self.add_error("key", f"key: {key!r} already belongs to a segment in {tenant.slug}.")
            return
        try:
            validate_segment(document)
        except (DefinitionError, ApiError) as exc:
            self.add_engine_error(exc)


READ_ONLY_FIELDSETS: list[tuple[str | None, dict[str, Any]]] = [
    (None, {"fields": ("tenant", "key", "name", "description")}),
    ("Who is in it", {"fields": ("members_in_words",), "classes": ("flagsvc-words-box",)}),
    ("Status", {"fields": ("used_by_flags", "version", "updated")}),
]


@admin.register(Segment)
class SegmentAdmin(ServiceWriteAdmin[Segment], TenantScopedAdmin[Segment]):
    form = SegmentForm
    list_display = ("key", "tenant", "name", "included_count", "version", "updated", "used_by")
    list_filter = (TenantListFilter,)
    search_fields = ("key", "name", "description")
    search_help_text = "Search by key, name or description."
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "key")
    edit_role = Role.EDITOR
    allow_delete = True

    class Media:
        css = {"all": ("flags/admin/flag_admin.css", "flags/admin/builder.css", "flags/admin/flag_words.css")}
        js = (
            "flags/admin/json_editor.js",
            "flags/admin/builder_kit.js",
            "flags/admin/condition_builder.js",
            "flags/admin/segment_builder.js",
        )

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """The segment builder's data (segment_builder.js): the words, the tenant's attributes and
        the last save's problems at their paths."""
        obj: Segment | None = kwargs.get("obj")
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if not editable:
            return super().render_change_form(request, context, *args, **kwargs)
        adminform = context.get("adminform")
        form = adminform.form if adminform is not None else None
        tenant_id = obj.tenant_id if obj is not None else self.form_tenant_id(request, form)
        data = condition_words().builder_context(tenant_id) if tenant_id is not None else {}
        data["tenant"] = tenant_id
        data["attributes_url"] = reverse("admin:segments_segment_builder_attributes")
        data["problems"] = (
            form.problems_at_paths({name: name for name in ("included", "excluded", "when")})
            if isinstance(form, ServiceForm)
            else []
        )
        context["segment_builder"] = data
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "builder-attributes/",
                self.admin_site.admin_view(self.builder_attributes_view),
                name="segments_segment_builder_attributes",
            ),
            *super().get_urls(),
        ]

    def builder_attributes_view(self, request: HttpRequest) -> JsonResponse:
        """`GET ?tenant=<id>`: the words and attributes of a tenant the person may edit in, else 404."""
        tenant_id = self.editable_tenant_id(request, request.GET.get("tenant"))
        if tenant_id is None:
            raise Http404("No such tenant.")
        return JsonResponse(condition_words().builder_context(tenant_id))

    def get_fieldsets(self, request: HttpRequest, obj: Segment | None = None) -> Any:
        if obj is not None and not self.has_change_permission(request, obj):
            return READ_ONLY_FIELDSETS
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("tenant", "key", "name", "description")}),
            ("Members", {"fields": ("included", "excluded", "when")}),
        ]
        if obj is not None:
            status: tuple[str, ...] = ("used_by_flags", "version", "updated")
            if self.has_change_permission(request, obj):
                status += ("expected_version",)
            fieldsets.append(("Status", {"fields": status}))
        if obj is None or self.has_change_permission(request, obj):
            fieldsets.append((None, {"fields": ("reason",), "classes": ("flagsvc-reason-row",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None) -> tuple[str, ...]:
        return ("tenant", "key", "used_by_flags", "version", "updated") if obj is not None else ()

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Count each row's flags with one read of the flags per tenant on the page, not one per row."""
        changelist = super().get_changelist_instance(request)
        usage: dict[int, dict[str, list[str]]] = {}
        for segment in changelist.result_list:
            if segment.tenant_id not in usage:
                usage[segment.tenant_id] = segment_users().by_segment(segment.tenant_id)
            setattr(segment, _USED_BY, usage[segment.tenant_id].get(segment.key, []))
        return changelist

    def _used_by(self, obj: Segment) -> list[str]:
        cached = getattr(obj, _USED_BY, None)
        return cached if isinstance(cached, list) else self._users_of(obj)

    @staticmethod
    def _users_of(segment: Segment) -> list[str]:
        return segment_users().by_segment(segment.tenant_id).get(segment.key, [])

    @admin.display(description="Used by live flags")
    def used_by(self, obj: Segment) -> int:
        return len(self._used_by(obj))

    @admin.display(description="Used by live flags")
    def used_by_flags(self, obj: Segment) -> SafeString | str:
        links = segment_users().links(obj.tenant_id, self._used_by(obj))
        return format_html_join(", ", "{}", ((link,) for link in links)) if links else "none"

    @admin.display(description="In words")
    def members_in_words(self, obj: Segment) -> SafeString:
        return segment_in_words(segment_to_engine(obj))

    @admin.display(description="Included ids")
    def included_count(self, obj: Segment) -> int:
        return len(obj.included) if isinstance(obj.included, list) else 0

    @admin.display(description="Last change", ordering="updated_at")
    def updated(self, obj: Segment) -> str:
        return format_datetime(obj.updated_at)

    def write(self, request: HttpRequest, form: SegmentForm, change: bool) -> Segment:
        document = form.document()
        if change:
            segment: Segment = form.instance
            return segment_update(
                tenant=segment.tenant,
                key=segment.key,
                data=document,
                actor=actor_of(request),
                expected_version=form.cleaned_data.get("expected_version"),
            )
        created, _ = segment_create(
            tenant=form.cleaned_data["tenant"], data=document, actor=actor_of(request)
        )
        return created

    def remove(self, request: HttpRequest, obj: Segment) -> None:
        segment_delete(tenant=obj.tenant, key=obj.key, actor=actor_of(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[Any]]:
        """The delete guard: live flags that use a segment are shown as what protects it."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for segment in objs:
            protected.extend(segment_users().links(segment.tenant_id, self._users_of(segment)))
        return deleted, model_count, perms_needed, protected
