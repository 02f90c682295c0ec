"""Reads for tenancy. The hot path (every API request) answers from a short-lived in-process cache.

While the database is unreachable the last known answers keep serving, so that evaluation goes on
from memory (api.md: "evaluation keeps serving from memory"): this process's own, and those kept in
`tenancy.last_known` for a process that starts during the outage (ADR 0007). There, "inactive" or
"revoked" from either source wins: an outage never lets in a client the database had shut out.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.models import Exists, OuterRef, QuerySet

from tenancy import last_known
from tenancy.models import ApiClient, Tenant

T = TypeVar("T")


class _TtlCache(Generic[T]):
    """A tiny thread-safe map whose entries expire after `API_CLIENT_CHECK_INTERVAL` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, T | None]:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def stale(self, key: str) -> tuple[bool, T | None]:
        """The last known answer, however old: used only while the database is unreachable."""
        entry = self._entries.get(key)
        return (False, None) if entry is None else (True, entry[1])

    def put(self, key: str, value: T) -> None:
        ttl = float(settings.API_CLIENT_CHECK_INTERVAL)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl, value)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_active_tenants: _TtlCache[Tenant | None] = _TtlCache()
_active_clients: _TtlCache[bool] = _TtlCache()


def active_tenant_by_slug(slug: str) -> Tenant | None:
    found, tenant = _active_tenants.get(slug)
    if found:
        return tenant
    try:
        tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    except DatabaseError:
        known, tenant = _tenant_without_database(slug)
        if not known:
            raise
        _active_tenants.put(slug, tenant)  # ask the database again after the interval, not per request
        return tenant
    _remember_tenant(slug, tenant)
    return tenant


def _remember_tenant(slug: str, tenant: Tenant | None) -> None:
    """What the database just said of this slug: the active tenant, or None."""
    _active_tenants.put(slug, tenant)
    last_known.remember_tenant(slug, tenant)


def _tenant_without_database(slug: str) -> tuple[bool, Tenant | None]:
    known_here, here = _active_tenants.stale(slug)
    known_kept, kept = last_known.last_known_tenant(slug)
    if (known_here and here is None) or (known_kept and kept is None):
        return True, None
    return known_here or known_kept, here or kept


def _tenant_with_client_query(slug: str, client_id: str) -> QuerySet[Tenant]:
    """The tenant of this slug, annotated `client_active`: whether it has this API client, active."""
    return Tenant.objects.filter(slug=slug).annotate(
        client_active=Exists(
            ApiClient.all_tenants.filter(tenant=OuterRef("pk"), client_id=client_id, is_active=True)
        )
    )[:1]


# Stand-ins for the two values in the query's SQL, which is made once per database vendor: neither
# a slug nor a client id can hold a NUL.
_SLUG, _CLIENT = "\x00slug\x00", "\x00client\x00"
_TEMPLATES: dict[str, tuple[str, tuple[Any, ...]]] = {}


def _tenant_with_client(slug: str, client_id: str) -> Tenant | None:
    """`_tenant_with_client_query`, run from SQL the ORM made once with stand-in values.

    One query for the client and its tenant: `resolve_tenant` asks for the tenant next, and both
    answers expire together, so a request to a tenant this process has not seen for a while makes
    one round trip, not two (1,000 tenants: most requests). Made once because building and compiling
    the query each time cost about 60 % of its ~1.2 ms of CPU (benchmarks/RESULTS.md); the ORM still
    writes the SQL, and `raw` converts the columns as the ORM would.
    """
    template = _TEMPLATES.get(connection.vendor)
    if template is None:
        template = _tenant_with_client_query(_SLUG, _CLIENT).query.sql_with_params()
        if _SLUG not in template[1] or _CLIENT not in template[1]:
            raise ImproperlyConfigured("the tenant-and-client query lost a parameter")
        _TEMPLATES[connection.vendor] = template
    sql, stand_ins = template
    params = [slug if value == _SLUG else client_id if value == _CLIENT else value for value in stand_ins]
    return next(iter(Tenant.objects.raw(sql, params)), None)


def api_client_is_active(client_id: str, tenant_slug: str) -> bool:
    key = f"{tenant_slug}\x00{client_id}"
    found, active = _active_clients.get(key)
    if found:
        return bool(active)
    try:
        found_tenant = _tenant_with_client(tenant_slug, client_id)
    except DatabaseError:
        known_here, here = _active_clients.stale(key)
        kept = last_known.last_known_client_active(tenant_slug, client_id)
        if not known_here and kept is None:
            raise
        active = here is not False and kept is not False
        _active_clients.put(key, active)
        return active
    active = found_tenant is not None and bool(getattr(found_tenant, "client_active", False))
    _active_clients.put(key, active)
    last_known.remember_client(tenant_slug, client_id, active=active)
    _remember_tenant(
        tenant_slug, found_tenant if found_tenant is not None and found_tenant.is_active else None
    )
    return active


def forget_cached_tenant(slug: str) -> None:
    _active_tenants.forget(slug)


def forget_cached_client(client_id: str, tenant_slug: str) -> None:
    _active_clients.forget(f"{tenant_slug}\x00{client_id}")


def clear_caches() -> None:
    _active_tenants.clear()
    _active_clients.clear()
    last_known.forget_kept()


def api_client_by_id(client_id: str) -> ApiClient | None:
    """The one lookup of a tenant-owned row before any tenant is known: `POST /v1/auth/token` names only
    the client, whose id is unique across tenants; the tenant is learnt from the row found."""
    return ApiClient.all_tenants.select_related("tenant").filter(client_id=client_id).first()
