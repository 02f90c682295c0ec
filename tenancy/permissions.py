"""One scope per route (api.md): a view names it, this permission checks the token carries it."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenancy.principals import ApiPrincipal


def required_scope(view: Any, method: str) -> str | None:
    """`scope` applies to every method; otherwise `read_scope` for safe methods, `write_scope` else."""
    if getattr(view, "scope", None):
        return str(view.scope)
    if method in SAFE_METHODS:
        return getattr(view, "read_scope", None)
    return getattr(view, "write_scope", None)


class HasRouteScope(BasePermission):
    message = "The token lacks the scope this route needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        scope = required_scope(view, request.method or "GET")
        if scope is None:
            return False
        if principal.has_scope(scope):
            return True
        self.message = f"This route needs the `{scope}` scope."
        return False
