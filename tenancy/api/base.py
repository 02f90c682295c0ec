"""The one place where an API request gets its tenant (api.md, Conventions; architecture.md, Tenancy).

Order of checks: token (401) → `X-Tenant-ID` present (400) → equals the token's tenant and the
tenant is active (403 `tenant_mismatch`) → route scope (403 `insufficient_scope`) → throttles.
Views receive `self.tenant` and pass it explicitly to every selector and service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.views import APIView

from kernel import context
from kernel.change_reason import REASON_META, header_text, parse_change_reason
from kernel.errors import ApiError, MalformedRequest, TenantMismatch, Unauthenticated
from tenancy.change_policy import is_write_scope, require_reason_by_policy
from tenancy.models import Tenant
from tenancy.permissions import required_scope
from tenancy.principals import ApiPrincipal
from tenancy.selectors import active_tenant_by_slug


class TenantAPIView(APIView):
    """Base of every protected `/v1` view."""

    tenant: Tenant
    principal: ApiPrincipal
    reads_body_through_drf = True
    """False for a view that reads its raw body itself (OFREP, whose errors have their own shape)."""

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        """Besides DRF's checks: a write's body is parsed before the view runs, also where the route
        reads none (approve, restore, pause...), so one that is not JSON is the 400 every route
        gives (api.md, Conventions) rather than ignored, and a route that does read it parses once."""
        super().initial(request, *args, **kwargs)
        if self.reads_body_through_drf and request.method not in SAFE_METHODS and request.stream is not None:
            request.data  # noqa: B018  (parses: 400 malformed_request, 415, 413 raise here)

    def check_permissions(self, request: Request) -> None:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            raise Unauthenticated("A bearer token is required: `Authorization: Bearer <token>`.")
        self.principal = principal
        context.current_actor.set(principal.actor)
        self.tenant = resolve_tenant(request, principal)
        context.current_tenant.set(self.tenant.slug)
        super().check_permissions(request)
        self.read_change_reason(request)

    def read_change_reason(self, request: Request) -> None:
        """Every write's `X-Change-Reason`, for the audit entries the request writes (kernel.context);
        refused before the view runs when it is malformed, or missing where the tenant requires one."""
        method = request.method or "GET"
        if method in SAFE_METHODS or not is_write_scope(required_scope(self, method)):
            return  # a read, or a POST that changes nothing (evaluate, preview, usage)
        self.record_change_reason(request)

    def record_change_reason(self, request: Request) -> None:
        """Read, check and keep `X-Change-Reason` (a write route whose scope is checked in the view
        calls it from its own `read_change_reason`)."""
        raw = request.META.get(REASON_META)
        reason = parse_change_reason(header_text(raw) if raw is not None else None)
        context.current_reason.set(reason)
        require_reason_by_policy(self.tenant, reason)

    @property
    def actor(self) -> str:
        return self.principal.actor


def resolve_tenant(request: Request | HttpRequest, principal: ApiPrincipal) -> Tenant:
    slug = request.META.get("HTTP_X_TENANT_ID", "").strip()
    if not slug:
        raise MalformedRequest("The X-Tenant-ID header is required.", details={"header": "X-Tenant-ID"})
    if slug != principal.tenant_slug:
        raise TenantMismatch("X-Tenant-ID does not match the tenant of the token.")
    tenant = active_tenant_by_slug(slug)
    if tenant is None:
        raise TenantMismatch("The tenant is unknown or disabled.")
    return tenant


def authorised_tenant(
    request: HttpRequest, scope: str, classes: Iterable[type[BaseAuthentication]]
) -> tuple[ApiPrincipal, Tenant] | None:
    """The caller and tenant of a request that passes every check `TenantAPIView` makes, or None.

    For the routes that answer without DRF on the happy path (`tenancy.api.fast_lane`): None sends
    the request through its DRF view, which says in the usual error shape which check failed.
    `classes` are the view's authentication classes, tried in order as DRF tries them; the lane
    passes only ones that read nothing but `request.META`.
    """
    principal = None
    try:
        for authentication_class in classes:
            found = authentication_class().authenticate(cast(Request, request))
            if found is not None:
                principal = found[0]
                break
    except AuthenticationFailed:
        return None
    if not isinstance(principal, ApiPrincipal) or not principal.has_scope(scope):
        return None
    try:
        tenant = resolve_tenant(request, principal)
    except ApiError:
        return None
    context.current_actor.set(principal.actor)
    context.current_tenant.set(tenant.slug)
    return principal, tenant
