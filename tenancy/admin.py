"""Tenants, people's memberships and API clients in the admin.

Tenants: superusers create and change them; members see their own (which also feeds the tenant
autocomplete of the other admins). Memberships and API clients: owners of the tenant, and
superusers. An API client is created by `api_client_create`; its secret is shown once, in the
response to the creating request, and stored nowhere (not even in a message cookie).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Case, CharField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from flagsvc.admin_writes import ServiceForm, ServiceWriteAdmin
from flagsvc.errors import Invalid
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin, admin_access
from tenancy.models import SCOPES, ApiClient, Membership, Role, Tenant
from tenancy.services import (
    TenancyError,
    api_client_create,
    api_client_revoke,
    tenant_create,
    tenant_set_active,
)

_ISSUED_SECRET = "_flagsvc_issued_secret"


class TenantForm(ServiceForm):
    class Meta:
        model = Tenant
        fields = ("slug", "name", "is_active")

    def clean_document(self) -> None:
        slug = self.cleaned_data.get("slug")
        if "slug" in self.fields and slug and Tenant.objects.filter(slug=slug).exists():
            self.add_error("slug", f"A tenant with slug {slug!r} already exists.")


@admin.register(Tenant)
class TenantAdmin(ServiceWriteAdmin[Tenant], TenantScopedAdmin[Tenant]):
    form = TenantForm
    list_display = ("slug", "name", "is_active", "created_at")
    search_fields = ("slug", "name")
    ordering = ("slug",)
    tenant_lookup = "pk"

    def tenant_id_of(self, obj: Tenant) -> int | None:
        return obj.pk

    def has_add_permission(self, request: HttpRequest) -> bool:
        return admin_access(request).is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return admin_access(request).is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        return ("slug", "ruleset_version", "created_at") if obj is not None else ()

    def get_list_display(self, request: HttpRequest) -> Any:
        if admin_access(request).is_superuser:
            return ("slug", "name", "is_active", "created_at")
        return ("slug", "name", "is_active", "role_here")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        qs = super().get_queryset(request)
        access = admin_access(request)
        if access.is_superuser:
            return qs
        whens = [When(pk=tid, then=Value(role)) for tid, role in access.roles.items()]
        return qs.annotate(_role=Case(*whens, default=Value(""), output_field=CharField()))

    @admin.display(description="Your role", ordering="_role")
    def role_here(self, obj: Tenant) -> str:
        return str(getattr(obj, "_role", "")) or "—"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Tenant], search_term: str
    ) -> tuple[QuerySet[Tenant], bool]:
        """The tenant autocomplete of another admin offers only the tenants that admin lets you write."""
        qs, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        match = request.resolver_match
        access = admin_access(request)
        if match is not None and match.url_name == "autocomplete" and not access.is_superuser:
            role = Role.OWNER
            try:
                source = apps.get_model(request.GET.get("app_label", ""), request.GET.get("model_name", ""))
                role = getattr(self.admin_site.get_model_admin(source), "edit_role", Role.OWNER)
            except (LookupError, ValueError, NotRegistered):
                pass
            qs = qs.filter(pk__in=access.tenant_ids(role))
        return qs, may_have_duplicates

    def write(self, request: HttpRequest, form: TenantForm, change: bool) -> Tenant:
        data = form.cleaned_data
        try:
            if not change:
                tenant = tenant_create(slug=data["slug"], name=data.get("name", ""))
                return (
                    tenant if data.get("is_active", True) else tenant_set_active(tenant=tenant, active=False)
                )
        except TenancyError as exc:
            raise Invalid({"slug": [str(exc)]}) from exc
        tenant = Tenant.objects.get(pk=form.instance.pk)
        if data.get("name") is not None and data["name"] != tenant.name:
            tenant.name = data["name"]
            tenant.save(update_fields=["name"])
        if data.get("is_active") is not None and data["is_active"] != tenant.is_active:
            tenant = tenant_set_active(tenant=tenant, active=data["is_active"])
        return tenant


class MembershipForm(forms.ModelForm):
    username = forms.CharField(
        max_length=150,
        help_text="The username of an existing person. A superuser creates people (with staff status, "
        "which signing in needs) under Authentication > Users.",
    )

    class Meta:
        model = Membership
        fields = ("tenant", "role")
        help_texts = {
            "role": "Viewer: reads flags, segments and the audit log. Editor: also changes flags and "
            "segments. Owner: also manages members and API clients.",
        }

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or self.cleaned_data
        if "username" in self.fields and data.get("username"):
            user = get_user_model().objects.filter(username=data["username"]).first()
            if user is None:
                self.add_error("username", "No person has this username.")
            elif data.get("tenant") and Membership.objects.filter(user=user, tenant=data["tenant"]).exists():
                self.add_error("username", f"{user} is already a member of {data['tenant']}.")
            else:
                self.instance.user = user
        demoted = self.instance.pk is not None and data.get("role") != Role.OWNER
        if demoted and _is_last_owner(self.instance):
            self.add_error("role", "This is the last owner of the tenant: make someone else owner first.")
        return data


def _is_last_owner(membership: Membership) -> bool:
    stored = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
    if stored != Role.OWNER:
        return False
    return (
        not Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin[Membership]):
    form = MembershipForm
    list_display = ("user", "tenant", "role")
    list_filter = (TenantListFilter, "role")
    search_fields = ("user__username", "user__email")
    search_help_text = "Search by username or email."
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "user__username")
    view_role = Role.OWNER
    edit_role = Role.OWNER
    allow_delete = True

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return ("username", "tenant", "role") if obj is None else ("user", "tenant", "role")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("user", "tenant") if obj is not None else ()

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[Any]]:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [
            f"{m.tenant} needs an owner: {m.user} is its last one" for m in objs if _is_last_owner(m)
        ]
        return deleted, model_count, perms_needed, protected


class ApiClientForm(ServiceForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["flags:read", "evaluate"],
        help_text="Least privilege: only what the client needs. `evaluate` for services that evaluate "
        "flags; `flags:write` for automation that changes them.",
    )

    class Meta:
        model = ApiClient
        fields = ("tenant", "name")
        help_texts = {"name": "Who uses this client, e.g. checkout-service (production)."}


@admin.register(ApiClient)
class ApiClientAdmin(ServiceWriteAdmin[ApiClient], TenantScopedAdmin[ApiClient]):
    form = ApiClientForm
    list_display = ("client_id", "tenant", "name", "scope_list", "is_active", "created_at", "last_token_at")
    list_filter = (TenantListFilter, "is_active")
    search_fields = ("client_id", "name")
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "client_id")
    actions = ("revoke",)
    view_role = Role.OWNER
    edit_role = Role.OWNER

    def has_change_permission(self, request: HttpRequest, obj: ApiClient | None = None) -> bool:
        """Clients are not edited, only created and revoked (the revoke action needs this, obj=None)."""
        return obj is None and super().has_change_permission(request)

    def get_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> Any:
        if obj is None:
            return ("tenant", "name", "scopes")
        return ("client_id", "tenant", "name", "scope_list", "is_active", "created_at", "last_token_at")

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiClient) -> str:
        return " ".join(obj.scopes or [])

    def write(self, request: HttpRequest, form: ApiClientForm, change: bool) -> ApiClient:
        data = form.cleaned_data
        try:
            issued = api_client_create(
                tenant=data["tenant"], scopes=list(data["scopes"]), name=data.get("name", "")
            )
        except TenancyError as exc:
            raise Invalid({"scopes": [str(exc)]}) from exc
        setattr(request, _ISSUED_SECRET, issued.client_secret)
        return issued.client

    def response_add(
        self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Show the secret now, in this response: no redirect, so it never sits in a cookie or session."""
        secret = getattr(request, _ISSUED_SECRET, "")
        messages.warning(
            request,
            f"Secret of {obj.client_id}: {secret} — copy it now. It is shown only this once and stored "
            "nowhere (only its hash is kept).",
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"API client {obj.client_id} created",
            "subtitle": None,
            "opts": self.opts,
            "client": obj,
            "scopes": " ".join(obj.scopes),
        }
        response = TemplateResponse(request, "admin/tenancy/apiclient/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description="Revoke selected API clients (their tokens stop working)", permissions=["change"]
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        access = self.access(request)
        revoked = [
            api_client_revoke(client=c).client_id
            for c in queryset.select_related("tenant")
            if c.is_active and access.can(c.tenant_id, Role.OWNER)
        ]
        self.message_user(request, f"Revoked {len(revoked)} client(s): {', '.join(revoked) or 'none'}.")


class MembershipInline(admin.TabularInline):
    """A person's tenants and roles, on their user page (superusers only)."""

    model = Membership
    extra = 0
    fields = ("tenant", "role")

    def _superuser(self, request: HttpRequest) -> bool:
        return admin_access(request).is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PersonAdmin(UserAdmin):
    inlines = (MembershipInline,)
