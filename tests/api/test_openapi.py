"""GET /openapi.json: the schema names every route as api.md does and describes every operation."""

from __future__ import annotations

import json


def test_evaluate__openapi_still_documents_the_lane_routes(client):
    schema = client.get("/openapi.json").json()
    for path, request_schema in (("/v1/evaluate", "EvaluateRequest"), ("/v1/evaluate/bulk", "BulkRequest")):
        post = schema["paths"][path]["post"]
        assert request_schema in json.dumps(post["requestBody"])
        assert "200" in post["responses"]
        assert "Evaluate" in post["description"]


def test_openapi__names_each_route_as_api_md_does_and_describes_every_operation(client):
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/flags", "/v1/flags/{key}", "/v1/evaluate", "/v1/evaluate/bulk", "/v1/audit"} <= paths
    assert not [path for path in paths if path.endswith("/")]
    generic = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "Base of every" in operation.get("description", "") or not operation.get("description")
    ]
    assert generic == []


def test_openapi__list_routes_document_the_page_envelope_and_its_parameters(client):
    schema = client.get("/openapi.json").json()
    lists = ("/v1/flags", "/v1/segments", "/v1/audit", "/v1/flags/{key}/versions", "/v1/webhooks")
    for path in (*lists, "/v1/webhooks/{webhook_id}/deliveries"):
        get = schema["paths"][path]["get"]
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(page["properties"]) == {"count", "next", "previous", "results"}, path
        assert {"limit", "offset"} <= {p["name"] for p in get["parameters"]}, path


def test_openapi__every_v1_operation_documents_its_errors_in_the_one_error_shape(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Error"]["required"] == ["error", "request_id"]
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            expected = {"400", "401", "422"} if path == "/v1/auth/token" else {"400", "401", "403", "422"}
            assert expected <= set(operation["responses"]), f"{method} {path}"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


def test_openapi__writes_document_if_match_idempotency_key_and_their_statuses(client):
    paths = client.get("/openapi.json").json()["paths"]
    patch = paths["/v1/flags/{key}"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"]}
    assert {"404", "409", "412", "413"} <= set(patch["responses"])
    create = paths["/v1/flags"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert {"409", "429"} <= set(create["responses"])


def test_openapi__flag_and_segment_bodies_refuse_unknown_fields_as_the_server_does(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("FlagRequest", "PatchedFlagRequest", "SegmentRequest", "UserRequest"):
        assert schemas[name]["additionalProperties"] is False, name


def test_openapi__a_bulk_entry_may_carry_an_error_code_and_no_flag_key(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    entry = schemas["BulkEntry"]
    assert "error_code" in entry["properties"]
    assert "flag_key" not in entry["properties"]
