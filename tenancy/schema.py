"""The OpenAPI document tells the truth: auth (a bearer JWT plus `X-Tenant-ID`), errors, pages, headers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object, force_instance
from rest_framework import serializers

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
    """Every protected `/v1` (and `/ofrep/v1`) operation documents the `X-Tenant-ID` header it requires."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(("/v1/", "/ofrep/v1/")) or path.startswith("/v1/auth/"):
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


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of every `/v1` answer that is not a success (api.md, Conventions).",
    "required": ["error", "request_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable, e.g. `validation_error`"},
                "message": {"type": "string", "description": "what went wrong, in words a person can act on"},
                "details": {
                    "type": "object",
                    "description": "`fields` maps each bad field path to its messages",
                    "additionalProperties": True,
                },
            },
        },
        "request_id": {"type": "string"},
    },
}


def paginated(item: type[serializers.Serializer[Any]], name: str) -> type[serializers.Serializer[Any]]:
    """The limit/offset page every list route answers: `{"count", "next", "previous", "results"}`."""
    fields: dict[str, Any] = {
        "count": serializers.IntegerField(min_value=0),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    page: type[serializers.Serializer[Any]] = type(name, (serializers.Serializer,), fields)
    page.is_page = True  # type: ignore[attr-defined]  # FlagsvcAutoSchema names its route `..._list`
    return page


PAGE_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "page size: 50 by default, a larger value is capped at 200",
        "schema": {"type": "integer", "minimum": 1},
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "entries to skip",
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1},
    },
]

# The statuses our own layers answer on every protected operation, with the one error shape.
_ERRORS_EVERYWHERE = {
    "400": "Malformed request: the body is not JSON, or `X-Tenant-ID` is missing.",
    "401": "No token, or a malformed, expired or wrongly signed one (`WWW-Authenticate: Bearer`).",
    "403": "`tenant_mismatch` (token of another tenant) or `insufficient_scope`.",
    "406": "The `Accept` header names no media type the route can answer (it answers JSON).",
    "422": "`validation_error`: `details.fields` maps each field path to its messages.",
    "503": "`unavailable`: the database is down (evaluation keeps serving from memory).",
}
_ERRORS_WITH_BODY = {
    "413": "`payload_too_large`: the body or a JSON value is over its cap.",
    "415": "The body is not `application/json`.",
}
_ERRORS_OF_WRITES = {
    "409": "`conflict` (key taken by another definition, archived key, still in use) or `prerequisite_cycle`.",
    "429": "`rate_limited`: too many writes by this client; retry after `Retry-After` seconds.",
}
_ERRORS_OF_DETAIL_ROUTES = {"404": "`not_found` / `flag_not_found`: no such entity in this tenant."}
_ERRORS_OF_VERSIONED_WRITES = {
    "412": "`precondition_failed`: `If-Match` names a version that is not current."
}

_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "the `ETag` you hold; the current one answers 304 without a body",
    "schema": {"type": "string"},
}


def _answers_a_page(operation: dict[str, Any]) -> bool:
    schema = operation.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    return str(schema.get("schema", {}).get("$ref", "")).startswith("#/components/schemas/Paginated")


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _add_parameter(operation: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == parameter["name"] and p.get("in") == parameter["in"] for p in parameters):
        parameters.append(dict(parameter))


def document_errors_and_headers(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Every `/v1` operation lists the error statuses it can answer, and the headers it honours.

    Which status an operation can answer follows from what it is (protected or not, with a body or
    not, a write, a detail route, versioned), the same facts that decide it at run time, so the schema
    cannot silently miss one; the schema fuzzer in `make test` checks it against the running service.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if path.startswith("/ofrep/v1/"):
            _document_ofrep_errors(operations)
        if not path.startswith("/v1/"):
            continue
        protected = not path.startswith("/v1/auth/")
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            errors = dict(_ERRORS_EVERYWHERE)
            if not protected:
                errors.pop("403")
            writes = method != "get" and not path.startswith("/v1/evaluate")
            if "requestBody" in operation:
                errors.update(_ERRORS_WITH_BODY)
            if writes and protected:
                errors.update(_ERRORS_OF_WRITES)
            if not protected:
                errors["429"] = "`rate_limited`: too many token requests from this address (`Retry-After`)."
            if "{" in path or path.startswith("/v1/evaluate"):
                errors.update(_ERRORS_OF_DETAIL_ROUTES)
            if any(p.get("name") == "If-Match" for p in operation.get("parameters", [])):
                # Declared by the views that read it (tenancy.api.helpers.IF_MATCH_HEADER), and only them.
                errors.update(_ERRORS_OF_VERSIONED_WRITES)
            if "requestBody" in operation:
                # No body is not JSON: 400 on every `/v1` route that reads one (tenancy.api.helpers.json_object).
                operation["requestBody"]["required"] = True
            responses = operation.setdefault("responses", {})
            for status_code, description in errors.items():
                responses.setdefault(status_code, _error_response(description))
            for status_code, response in responses.items():
                if status_code.startswith(("4", "5")) and "content" not in response:
                    # An error a view declares itself (e.g. apply's 412) has the one error shape too.
                    response.update(_error_response(response.get("description", "")))
            if method == "get" and "{key}" in path and path.count("/") == 3:
                _add_parameter(operation, _IF_NONE_MATCH)
                responses.setdefault(
                    "304", {"description": "Not modified: `If-None-Match` names the current `ETag`."}
                )
            if _answers_a_page(operation):
                for parameter in PAGE_PARAMETERS:
                    _add_parameter(operation, parameter)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    # `?state=` is the same as no `state`: every query parameter reads an empty value so.
                    parameter["allowEmptyValue"] = True
    return result


_OFREP_ERRORS_IN_OUR_SHAPE = {
    key: value for key, value in _ERRORS_EVERYWHERE.items() if key not in ("400", "422")
} | {
    "413": _ERRORS_WITH_BODY["413"],
    "429": "`rate_limited` (when `RATE_LIMIT_OFREP` is set): retry after `Retry-After` seconds.",
}


def _document_ofrep_errors(operations: dict[str, Any]) -> None:
    """OFREP routes answer their 400 and 404 in OFREP's shape (documented by their views); what our
    layers answer before them (token, tenant, scope, size, rate, database) keeps the `/v1` shape."""
    for operation in operations.values():
        responses = operation.setdefault("responses", {})
        for status_code, description in _OFREP_ERRORS_IN_OUR_SHAPE.items():
            responses.setdefault(status_code, _error_response(description))
        if "429" in responses:
            responses["429"].setdefault(
                "headers",
                {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
            )


class StrictBody:
    """Mixin for a request document the engine reads field by field (a flag, a segment, a user).

    Such a document refuses a field it does not know (422 naming it), and takes `null` for an optional
    field as "not given" (its default applies): the schema says both.
    """


class FlagsvcAutoSchema(AutoSchema):
    """drf-spectacular's schema, as strict and as lenient as the server is with a `StrictBody`."""

    def get_operation_id(self) -> str:
        """`<path>_list` for a GET that answers a page, `<path>_<parameter>_<method>` for a route that
        ends in a parameter naming what it does (`.../{action}`).

        drf-spectacular calls a GET `_list` only on its generic list views; ours are plain API views, so
        a collection and its items both came out `..._retrieve` and got numeral suffixes (`manage.py
        check --deploy` warned of seven such collisions, and a generated client got `..._retrieve_2`).
        """
        operation_id = str(super().get_operation_id())
        responses = self.get_response_serializers()
        answer = responses.get(200) if isinstance(responses, dict) else responses
        if self.method == "GET" and getattr(answer, "is_page", False):
            return operation_id.removesuffix("_retrieve") + "_list"
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        if last == "{action}":
            stem, _, method = operation_id.rpartition("_")
            return f"{stem}_action_{method}"
        return operation_id

    def _map_serializer(self, serializer: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(force_instance(serializer), StrictBody):
            schema["additionalProperties"] = False
            required = set(schema.get("required", ()))
            for name, field_schema in schema.get("properties", {}).items():
                if name not in required:
                    if "$ref" in field_schema:  # a `$ref` takes no siblings (OpenAPI 3.0)
                        field_schema["allOf"] = [{"$ref": field_schema.pop("$ref")}]
                    field_schema["nullable"] = True
        return schema
