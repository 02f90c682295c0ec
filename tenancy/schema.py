"""OpenAPI description of our authentication: a bearer JWT plus the `X-Tenant-ID` header."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

TENANT_HEADER = {
    "name": "X-Tenant-ID",
    "in": "header",
    "required": True,
    "description": "The tenant slug; must equal the token's `tenant` claim.",
    "schema": {"type": "string"},
}


class ApiClientJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiClientJWTAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return dict(
            build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix="Bearer", bearer_format="JWT"
            )
        )


def add_tenant_header(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every protected `/v1` operation documents the `X-Tenant-ID` header it requires."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/v1/") or path.startswith("/v1/auth/"):
            continue
        for operation in operations.values():
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == "X-Tenant-ID" for p in parameters):
                parameters.append(dict(TENANT_HEADER))
    return result


def canonical_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Routes accept an optional trailing slash (`/?$`); the schema names them as api.md does, without it."""
    result["paths"] = {path.rstrip("/") or "/": item for path, item in result.get("paths", {}).items()}
    return result
