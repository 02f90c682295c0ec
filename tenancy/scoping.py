"""Tenancy fails closed: tenant-owned models are reached only inside an explicit tenant scope.

Built on django-scopes: `Model.objects` raises `ScopeError` for any query unless a tenant scope is
active (`tenant_scope(tenant)`) or the manager is given one (`Model.objects.for_tenant(tenant)`).
The unscoped escape hatch is `Model.all_tenants`, allowed only in the modules that the test
`test_all_tenants_escape_hatch_is_used_only_on_the_allow_list` lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import models
from django_scopes import ScopedManager, scope, scopes_disabled
from django_scopes.exceptions import ScopeError
from django_scopes.manager import DisabledQuerySet

__all__ = ["ScopeError", "TenantScopedManager", "all_tenants_scope", "tenant_scope"]


class _ForTenant:
    def for_tenant(self, tenant: Any) -> Any:
        """A queryset of this one tenant's rows, whatever scope is active."""
        if tenant is None:
            raise ScopeError("for_tenant() needs a tenant")
        return self.with_scope(tenant=tenant).all()  # type: ignore[attr-defined]


class _UnscopedQuerySet(DisabledQuerySet):
    """django-scopes' refusing queryset, closed where it is open: `exists()`, `in_bulk()`, `contains()`,
    `explain()` and `bulk_update()` would otherwise run unscoped (`Flag.objects.exists()` is True if
    any tenant has a flag)."""

    exists = DisabledQuerySet.error
    contains = DisabledQuerySet.error
    in_bulk = DisabledQuerySet.error
    explain = DisabledQuerySet.error
    bulk_update = DisabledQuerySet.error


def TenantScopedManager(queryset_class: type[models.QuerySet[Any]] | None = None) -> Any:
    """The default manager of every tenant-owned model: raises unless a tenant scope is active."""
    base: type[models.Manager[Any]] = (
        models.Manager.from_queryset(queryset_class) if queryset_class else models.Manager
    )
    manager_class = type("TenantManager", (_ForTenant, base), {})
    scoped_class = type(ScopedManager(_manager_class=manager_class, tenant="tenant"))

    class FailClosedManager(scoped_class):  # type: ignore[misc,valid-type]
        def get_queryset(self) -> Any:
            qs = super().get_queryset()
            if isinstance(qs, DisabledQuerySet) and not isinstance(qs, _UnscopedQuerySet):
                return _UnscopedQuerySet(self.model, using=self._db, missing_scopes=qs.missing_scopes)
            return qs

    return FailClosedManager()


@contextmanager
def tenant_scope(tenant: Any | Sequence[Any]) -> Iterator[None]:
    """The rows of `tenant` (a tenant, its id, or a list of them: no tenant at all for an empty list)."""
    if tenant is None:
        # django-scopes reads a None scope as "do not filter": every tenant's rows. Never that here.
        raise ScopeError("tenant_scope() needs a tenant")
    with scope(tenant=tenant):
        yield


@contextmanager
def all_tenants_scope() -> Iterator[None]:
    """Superuser admin views and operator commands only."""
    with scopes_disabled():
        yield
