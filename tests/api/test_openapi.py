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
