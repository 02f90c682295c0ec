"""Who calls the API: an API client of one tenant, known from a verified JWT."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    client_id: str
    tenant_slug: str
    scopes: frozenset[str]
    token_id: str

    is_authenticated = True
    is_anonymous = False

    @property
    def actor(self) -> str:
        return f"client:{self.client_id}"

    def has_scope(self, scope: str) -> bool:
        """Reads of a kind also pass with its `:write` scope (api.md, Auth)."""
        if scope in self.scopes:
            return True
        if scope.endswith(":read"):
            return scope.removesuffix(":read") + ":write" in self.scopes
        return False
