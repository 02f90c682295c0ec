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
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Case, CharField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from kernel.admin_writes import ServiceForm, ServiceWriteAdmin
from kernel.errors import ApiError, Conflict, Invalid
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin, admin_access
from tenancy.models import SCOPES, ApiClient, Membership, Role, Tenant
from tenancy.services import (
    TenancyError,
    api_client_create,
    api_client_revoke,
    is_last_owner,
    last_owner_message,
    membership_add,
    membership_remove,
    membership_set_role,
    password_set_token,
    person_create,
    person_forget_password,
    tenant_create,
    tenant_update,
)

_ISSUED_SECRET = "_flagsvc_issued_secret"
_NEW_PERSON = "_flagsvc_new_person"


class TenantForm(ServiceForm):
    class Meta:
        model = Tenant
        fields = ("slug", "name", "is_active", "require_change_reason", "protect_new_flags")

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
        """Superusers change tenants; an owner changes only the policy of a tenant they own."""
        access = admin_access(request)
        if access.is_superuser:
            return True
        return access.can(obj.pk, Role.OWNER) if obj is not None else access.can_anywhere(Role.OWNER)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        if obj is not None and not admin_access(request).is_superuser:
            return ("slug", "name", "is_active", "ruleset_version", "created_at")
        return ("slug", "ruleset_version", "created_at") if obj is not None else ()

    def get_list_display(self, request: HttpRequest) -> Any:
        if admin_access(request).is_superuser:
            return ("slug", "name", "is_active", "require_change_reason", "protect_new_flags", "created_at")
        return ("slug", "name", "is_active", "require_change_reason", "protect_new_flags", "role_here")

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        """The tenant, then its change policies, which its owners set (the rest is the superuser's)."""
        policies = ("require_change_reason", "protect_new_flags")
        tenant_fields = ["slug", "name", "is_active"] + (["ruleset_version", "created_at"] if obj else [])
        owner_only = obj is not None and not admin_access(request).is_superuser
        return [
            (None, {"fields": tenant_fields}),
            (
                "Change policies",
                {
                    "fields": policies,
                    "description": (
                        "How people and services may change this tenant's flags. Owners of the tenant "
                        "set these; the name and whether the tenant is active are set by a superuser."
                        if owner_only
                        else "How people and services may change this tenant's flags. Owners of the "
                        "tenant can change these too."
                    ),
                },
            ),
        ]

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
                return tenant_update(
                    tenant=tenant,
                    is_active=data.get("is_active", True),
                    require_change_reason=data.get("require_change_reason", False),
                    protect_new_flags=data.get("protect_new_flags", False),
                )
        except TenancyError as exc:
            raise Invalid({"slug": [str(exc)]}) from exc
        tenant = Tenant.objects.get(pk=form.instance.pk)
        return tenant_update(
            tenant=tenant,
            name=data.get("name"),
            is_active=data.get("is_active"),
            require_change_reason=data.get("require_change_reason"),
            protect_new_flags=data.get("protect_new_flags"),
        )


class MembershipForm(ServiceForm):
    username = forms.CharField(
        max_length=150,
        help_text="A person who is already a member of one of your tenants is added by their username. "
        "Any other username creates a new person, who gets a link to set their password.",
    )
    email = forms.EmailField(required=False, help_text="For a new person only.")

    class Meta:
        model = Membership
        fields = ("tenant", "role")
        help_texts = {
            "role": "Viewer: reads flags, segments and the audit log. Editor: also changes flags and "
            "segments. Owner: also manages members and API clients.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # a membership's person is fixed: only the role changes
            for name in ("username", "email"):
                self.fields.pop(name, None)

    def add_api_error(self, err: ApiError) -> None:
        """Messages at their own field, without the `field:` prefix that engine paths need."""
        fields = err.details.get("fields") if isinstance(err, Invalid) else None
        if not isinstance(fields, dict):
            return super().add_api_error(err)
        for name, problems in fields.items():
            for problem in problems:
                self.add_error(name if name in self.fields else None, problem)


@admin.register(Membership)
class MembershipAdmin(ServiceWriteAdmin[Membership], TenantScopedAdmin[Membership]):
    """Owners add people to their tenants, change their roles and remove them.

    An owner reaches only the people who are members of a tenant they own (`AdminAccess.people`): a
    username outside that set is never looked up for them, only offered as a new person, and a taken
    one gets `USERNAME_TAKEN`, the same words whoever holds it. Superusers reach everyone.
    """

    form = MembershipForm
    list_display = ("person", "tenant", "role", "signed_in")
    list_filter = (TenantListFilter, "role")
    search_fields = ("user__username", "user__email")
    search_help_text = "Search by username or email."
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "user__username")
    view_role = Role.OWNER
    edit_role = Role.OWNER
    allow_delete = True
    actions = ("new_password_link",)

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return ("username", "email", "tenant", "role") if obj is None else ("person", "tenant", "role")

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """One Save: adding a new person ends on the page with their link, not on another form."""
        context.update(show_save_and_add_another=False, show_save_and_continue=False)
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description="Has signed in", boolean=True)
    def signed_in(self, obj: Membership) -> bool:
        return obj.user.last_login is not None

    @admin.display(description="Person", ordering="user__username")
    def person(self, obj: Membership) -> str:
        return f"{obj.user.get_username()} <{obj.user.email}>" if obj.user.email else obj.user.get_username()

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        # `person`, not `user`: the user field would link to the people admin, which owners cannot open.
        return ("person", "tenant") if obj is not None else ()

    def write(self, request: HttpRequest, form: MembershipForm, change: bool) -> Membership:
        data = form.cleaned_data
        try:
            if change:
                stored = Membership.objects.for_tenant(form.instance.tenant_id).get(pk=form.instance.pk)
                return membership_set_role(membership=stored, role=data["role"])
            tenant, username = data["tenant"], data["username"]
            known = self.access(request).people().filter(username=username).first()
            if known is not None:
                if data.get("email") and data["email"] != known.email:
                    raise TenancyError(
                        f"{username} is already a member of your tenants: leave Email empty to add "
                        "them, or choose another username for a new person.",
                        field="email",
                    )
                return membership_add(user=known, tenant=tenant, role=data["role"])
            person = person_create(
                username=username, email=data.get("email") or "", tenant=tenant, role=data["role"]
            )
        except TenancyError as exc:
            raise Invalid({exc.field or "username": [str(exc)]}) from exc
        setattr(request, _NEW_PERSON, person)
        return Membership.objects.for_tenant(tenant).get(user=person)

    def remove(self, request: HttpRequest, obj: Membership) -> None:
        try:
            membership_remove(membership=obj)
        except TenancyError as exc:
            raise Conflict(str(exc)) from exc

    def response_add(
        self, request: HttpRequest, obj: Membership, post_url_continue: str | None = None
    ) -> HttpResponse:
        """A new person: show their set-password link now, in this response, and nowhere else."""
        person = getattr(request, _NEW_PERSON, None)
        if person is None:
            return super().response_add(request, obj, post_url_continue)
        return self._password_link_page(
            request, obj, person, f"{person.get_username()} can now set their password"
        )

    @admin.action(
        description="New set-password link for the selected person (who has never signed in)",
        permissions=["change"],
    )
    def new_password_link(self, request: HttpRequest, queryset: QuerySet[Membership]) -> HttpResponse | None:
        """For a lost link: the old links stop working. Only for a person who never signed in and who
        belongs to no tenant but the requester's (`AdminAccess.may_reset_password`)."""
        memberships = list(queryset.select_related("user", "tenant"))
        people = {m.user_id: m.user for m in memberships}
        if len(people) != 1:
            self.message_user(request, "Select the membership of one person.", messages.ERROR)
            return None
        person = next(iter(people.values()))
        if not self.access(request).may_reset_password(person):
            self.message_user(
                request,
                f"No link for {person.get_username()}: a new link is only for a person who has never signed "
                "in and who is a member of your tenants only. Ask an operator.",
                messages.ERROR,
            )
            return None
        person_forget_password(person)
        return self._password_link_page(
            request, memberships[0], person, f"A new link for {person.get_username()}"
        )

    def _password_link_page(
        self, request: HttpRequest, membership: Membership, person: Any, title: str
    ) -> HttpResponse:
        uidb64, token = password_set_token(person)
        link = request.build_absolute_uri(reverse("admin:password_set", args=[uidb64, token]))
        hours = settings.PASSWORD_RESET_TIMEOUT // 3600
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "membership": membership,
            "person": person,
            "link": link,
            "valid_for": f"{hours // 24} days" if hours % 24 == 0 and hours >= 24 else f"{hours} hours",
        }
        response = TemplateResponse(request, "admin/tenancy/membership/new_person.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[Any]]:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [last_owner_message(m) for m in objs if is_last_owner(m)]
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
