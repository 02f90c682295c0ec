"""Who may see and change what in the admin: memberships, not Django model permissions.

A signed-in person sees only the tenants they are a member of, with one role per tenant
(architecture.md, Tenancy): a viewer reads, an editor also changes flags and segments, an owner
also manages members and API clients. Superusers see every tenant. Staff status is still needed to
sign in at all (AdminSite.has_permission).

Everything here fails closed:

- `admin_request_scope` wraps every admin view (see flagsvc.admin_site) in the person's tenant
  scope, so even a query that Django's admin makes on its own (a unique check, a filter's choices)
  sees only those tenants.
- `TenantScopedAdmin.get_queryset` scopes explicitly as well, and `get_object` turns "not in your
  tenants" into 404: another tenant's object URL must not tell that the object exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest

from kernel.admin_base import ModelAdminBase
from tenancy.models import Membership, Role, Tenant
from tenancy.scoping import all_tenants_scope, tenant_scope

M = TypeVar("M", bound=models.Model)

RANK: Mapping[str, int] = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}
_CACHE_ATTR = "_flagsvc_admin_access"


@dataclass(frozen=True)
class AdminAccess:
    """The tenants a person may reach in the admin, with their role in each."""

    is_superuser: bool
    roles: Mapping[int, str] = field(default_factory=dict)

    def role(self, tenant_id: int | None) -> str | None:
        if tenant_id is None:
            return None
        if self.is_superuser:
            return Role.OWNER
        return self.roles.get(tenant_id)

    def can(self, tenant_id: int | None, minimum: str) -> bool:
        role = self.role(tenant_id)
        return role is not None and RANK[role] >= RANK[minimum]

    def can_anywhere(self, minimum: str) -> bool:
        return self.is_superuser or any(RANK[role] >= RANK[minimum] for role in self.roles.values())

    def tenant_ids(self, minimum: str = Role.VIEWER) -> list[int]:
        """Member tenants with at least `minimum`; meaningless for superusers (they reach all)."""
        return sorted(tid for tid, role in self.roles.items() if RANK[role] >= RANK[minimum])

    def tenants(self, minimum: str = Role.VIEWER) -> QuerySet[Tenant]:
        qs = Tenant.objects.all()
        return qs if self.is_superuser else qs.filter(pk__in=self.tenant_ids(minimum))

    def people(self) -> QuerySet[Any]:
        """The people this person may find and add to a tenant: everyone for a superuser, else the
        members of the tenants they own. Nobody else is ever looked up on their behalf."""
        qs = get_user_model()._default_manager.all()
        if self.is_superuser:
            return qs
        return qs.filter(memberships__tenant_id__in=self.tenant_ids(Role.OWNER)).distinct()

    def may_reset_password(self, person: Any) -> bool:
        """A new set-password link: only for someone who never signed in (so nobody's account is taken
        over) and, unless this is a superuser, who belongs to no tenant but the ones this person owns."""
        if person.last_login is not None or person.is_superuser:
            return False
        if self.is_superuser:
            return True
        theirs = set(Membership.all_tenants.filter(user=person).values_list("tenant_id", flat=True))
        return bool(theirs) and theirs <= set(self.tenant_ids(Role.OWNER))


NO_ACCESS = AdminAccess(is_superuser=False)


def admin_access(request: HttpRequest) -> AdminAccess:
    """The access of the signed-in person, read once per request."""
    cached = getattr(request, _CACHE_ATTR, None)
    if isinstance(cached, AdminAccess):
        return cached
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        access = NO_ACCESS
    elif user.is_superuser:
        access = AdminAccess(is_superuser=True)
    else:
        # A person's memberships span tenants by nature: this read is what the tenant scope is made of.
        rows = Membership.all_tenants.filter(user=user).values_list("tenant_id", "role")
        access = AdminAccess(is_superuser=False, roles={tid: role for tid, role in rows if role in RANK})
    setattr(request, _CACHE_ATTR, access)
    return access


@contextmanager
def admin_request_scope(request: HttpRequest) -> Iterator[None]:
    """The tenant scope of one admin request: all tenants for a superuser, else the member tenants."""
    access = admin_access(request)
    if access.is_superuser:
        with all_tenants_scope():
            yield
    else:
        with tenant_scope(access.tenant_ids()):
            yield


def scoped_queryset(model: type[M], access: AdminAccess, minimum: str, tenant_lookup: str) -> QuerySet[M]:
    """Rows of `model` in the tenants where the person has at least `minimum`.

    Superusers get the unscoped manager (`all_tenants` where the model has one). Everyone else gets
    the default (scoped) manager inside their tenant scope *and* an explicit filter on the admin's
    `tenant_lookup`, so that a model reached through another field (Tenant itself, by `pk`) is
    limited all the same.
    """
    if access.is_superuser:
        manager = getattr(model, "all_tenants", None) or model._default_manager
        return manager.all()
    ids = access.tenant_ids(minimum)
    with tenant_scope(ids):
        qs = model._default_manager.all()
    return qs.filter(**{f"{tenant_lookup}__in": ids})


class TenantScopedAdmin(ModelAdminBase[M]):
    """Base of every admin of a tenant-owned model: querysets, choices and permissions by membership.

    `view_role` may read, `edit_role` may add, change and (where `allow_delete`) delete. Objects of
    a tenant outside the person's reach are 404, never 403.
    """

    view_role: ClassVar[str] = Role.VIEWER
    edit_role: ClassVar[str] = Role.EDITOR
    allow_delete: ClassVar[bool] = False
    tenant_lookup: ClassVar[str] = "tenant"

    def tenant_id_of(self, obj: M) -> int | None:
        return getattr(obj, "tenant_id", None)

    def access(self, request: HttpRequest) -> AdminAccess:
        return admin_access(request)

    def editable_tenant_id(self, request: HttpRequest, raw: Any) -> int | None:
        """A tenant id that came with the request (an add form's tenant, a query parameter), if the
        person may edit in that tenant; else None, so that a forged id learns nothing about it."""
        text = str(raw) if isinstance(raw, int | str) else ""
        if not (text.isascii() and text.isdigit() and len(text) <= 18):  # "²" or 5,000 digits: no id
            return None
        if not self.access(request).can(int(text), self.edit_role):
            return None
        return int(text)

    def form_tenant_id(self, request: HttpRequest, form: Any) -> int | None:
        """An add form's tenant (the one posted, else the initial one), if the person edits there."""
        if form is None or "tenant" not in form.fields:
            return None
        return self.editable_tenant_id(request, form["tenant"].value())

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        qs = scoped_queryset(self.model, self.access(request), self.view_role, self.tenant_lookup)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> M:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object in your tenants.")
        return obj

    # Permissions come from memberships; Django's model permissions play no part.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.access(request).can_anywhere(self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        access = self.access(request)
        if obj is None:
            return access.can_anywhere(self.view_role)
        return access.can(self.tenant_id_of(obj), self.view_role)

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        access = self.access(request)
        if obj is None:
            return access.can_anywhere(self.edit_role)
        return access.can(self.tenant_id_of(obj), self.edit_role)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.access(request).can_anywhere(self.edit_role)

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self.allow_delete and self.has_change_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Bulk deletes skip the write services (and the audit log); delete one object at a time.
        actions.pop("delete_selected", None)
        return actions

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.related_model is Tenant:
            tenants = self.access(request).tenants(self.edit_role).order_by("slug")
            kwargs["queryset"] = tenants
            field = super().formfield_for_foreignkey(db_field, request, **kwargs)
            if field is not None and len(ids := [t.pk for t in tenants[:2]]) == 1:
                field.initial = ids[0]
            return field
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantListFilter(admin.SimpleListFilter):
    """Filter by tenant, offering only the tenants the person can see (hidden when that is one)."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(str(t.pk), t.slug) for t in admin_access(request).tenants().order_by("slug")]

    def has_output(self) -> bool:
        return len(self.lookup_choices) > 1

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(tenant_id=int(value))
        return queryset
