"""Where the schema fuzzer found the OpenAPI document and the server disagreeing: each is settled here,
the server and `/openapi.json` saying the same thing (api.md winning over both)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.events import ENTITIES, EVENT_TYPES
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks/flags"


@pytest.fixture
def schema(client: Any) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _components(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["components"]["schemas"]


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


# 1. A flag's versions are stored documents: no `usage`, and the schema does not ask for one.


def test_flag_versions__each_flag_has_no_usage_and_the_schema_does_not_require_it(api, schema):
    api.post("/v1/flags", {"key": "f", "state": "on"}, format="json")
    results = api.get("/v1/flags/f/versions").json()["results"]
    assert results and all("usage" not in entry["flag"] for entry in results)
    version = _components(schema)["FlagVersion"]["properties"]["flag"]["$ref"].rsplit("/", 1)[1]
    assert "usage" not in _components(schema)[version].get("required", [])
    assert "usage" not in _components(schema)[version]["properties"]
    assert "usage" in _components(schema)["Flag"]["required"]  # the live flag still has it


# 2. An event's `entity` is any entity an event type names.


def test_events__entity_enum__is_every_entity_an_event_type_names(schema):
    event = _components(schema)["Event"]["properties"]["entity"]
    enum = _components(schema)[event["$ref"].rsplit("/", 1)[1]]["enum"]
    assert set(enum) == set(ENTITIES) == {entity for entity, _ in EVENT_TYPES}
    assert {"change_request", "killswitch"} <= set(enum)


def test_events__a_killswitch_event__has_an_entity_the_schema_allows(api, tenant, schema):
    make_flag(tenant, "pay", state="on", kill_category="payments")
    engaged = api.post("/v1/killswitch/payments", HTTP_X_CHANGE_REASON="incident 7")
    assert engaged.status_code == 201, engaged.content
    events = api.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    enum = _components(schema)["EntityEnum"]["enum"]
    assert "killswitch" in {event["entity"] for event in events}
    assert all(event["entity"] in enum for event in events)


# 3. OFREP's 400 is OFREP's shape, also when our layers answer it (no `X-Tenant-ID`): `INVALID_CONTEXT`,
#    one of the three codes api.md names.


@pytest.mark.parametrize("path", ["/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/checkout"])
def test_ofrep__no_tenant_header__400_invalid_context_in_ofreps_shape(make_api, tenant, path):
    response = make_api(tenant, tenant_header="").post(path, {"context": {}}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "INVALID_CONTEXT"
    assert "X-Tenant-ID" in body["errorDetails"]
    assert "error" not in body


def test_ofrep__another_tenants_header__403_keeps_the_v1_shape(make_api, tenant):
    response = make_api(tenant, tenant_header="someone-else").post(
        "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "u"}}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_mismatch"


def test_ofrep__schema_400__is_the_ofrep_failure_with_invalid_context(schema):
    for path in ("/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/{key}"):
        ref = schema["paths"][path]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
        failure = _components(schema)[ref["$ref"].rsplit("/", 1)[1]]
        codes = _components(schema)[failure["properties"]["errorCode"]["$ref"].rsplit("/", 1)[1]]["enum"]
        assert "INVALID_CONTEXT" in codes


# 4. Webhooks carry a version: `ETag` on reads and writes, `If-Match` stale → 412, garbage → 422.


def _webhook(api) -> dict[str, Any]:
    response = api.post("/v1/webhooks", {"url": PUBLIC, "events": ["flag.*"]}, format="json")
    assert response.status_code == 201, response.content
    assert response["ETag"] == '"1"'
    return response.json()


def test_webhook_get__sends_its_version_as_etag(api):
    created = _webhook(api)
    got = api.get(f"/v1/webhooks/{created['id']}")
    assert got["ETag"] == '"1"' and got.json()["version"] == 1


def test_webhook_patch__stale_if_match__412_and_unchanged(api):
    created = _webhook(api)
    response = api.patch(
        f"/v1/webhooks/{created['id']}", {"active": False}, format="json", HTTP_IF_MATCH='"999"'
    )
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert api.get(f"/v1/webhooks/{created['id']}").json()["active"] is True


def test_webhook_patch__garbage_if_match__422_naming_it(api):
    created = _webhook(api)
    response = api.patch(
        f"/v1/webhooks/{created['id']}", {"active": False}, format="json", HTTP_IF_MATCH="garbage"
    )
    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["If-Match"]


def test_webhook_patch__current_if_match__200_a_new_version_and_etag(api):
    created = _webhook(api)
    response = api.patch(
        f"/v1/webhooks/{created['id']}", {"active": False}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200
    assert response["ETag"] == '"2"' and response.json()["version"] == 2
    same = api.patch(f"/v1/webhooks/{created['id']}", {"active": False}, format="json")
    assert same.json()["version"] == 2  # nothing changed: no new version


def test_webhook_rotate_secret__is_a_new_version(api):
    created = _webhook(api)
    rotated = api.post(f"/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["version"] == 2 and rotated["ETag"] == '"2"'


def test_webhook_delete__stale_if_match__412_and_kept_current__204(api):
    created = _webhook(api)
    url = f"/v1/webhooks/{created['id']}"
    assert api.delete(url, HTTP_IF_MATCH='"999"').status_code == 412
    assert api.delete(url, HTTP_IF_MATCH="garbage").status_code == 422
    assert api.get(url).status_code == 200
    assert api.delete(url, HTTP_IF_MATCH='"1"').status_code == 204


def test_openapi__if_match_and_412__only_where_the_server_reads_if_match(schema):
    honoured = {
        ("put", "/v1/flags/{key}"),
        ("patch", "/v1/flags/{key}"),
        ("delete", "/v1/flags/{key}"),
        ("put", "/v1/segments/{key}"),
        ("patch", "/v1/segments/{key}"),
        ("delete", "/v1/segments/{key}"),
        ("patch", "/v1/webhooks/{webhook_id}"),
        ("delete", "/v1/webhooks/{webhook_id}"),
    }
    documented = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "If-Match" for p in operation.get("parameters", []))
    }
    assert documented == honoured
    for method, path in honoured:
        assert "412" in schema["paths"][path][method]["responses"]
    assert "412" not in schema["paths"]["/v1/killswitch/{category}"]["delete"]["responses"]


# 5. An empty `limit=` / `offset=` is "not given" on every paginated route.


@pytest.mark.parametrize(
    "route",
    [
        "/v1/flags",
        "/v1/segments",
        "/v1/audit",
        "/v1/change-requests",
        "/v1/webhooks",
        "/v1/killswitch",
        "/v1/flags/f/versions",
        "/v1/flags/f/rollouts",
    ],
)
def test_list__empty_limit_and_offset__mean_the_defaults(api, route):
    api.post("/v1/flags", {"key": "f", "state": "on"}, format="json")
    assert api.get(f"{route}?limit=&offset=").json() == api.get(route).json()


def test_events__empty_limit_and_after__mean_the_defaults(api):
    response = api.get("/v1/events?limit=&after=", HTTP_ACCEPT="application/json")
    assert response.status_code == 200


def test_openapi__every_page_parameter__allows_an_empty_value(schema):
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in ("limit", "offset"):
                    assert parameter.get("allowEmptyValue") is True, path


# 6. `GET /v1/events`: `limit` at least 1, cursors of at most MAX_CURSOR_DIGITS decimal digits.


def test_events__limit_zero_or_bad_cursor__422_and_the_schema_says_why(api, schema):
    assert api.get("/v1/events?limit=0", HTTP_ACCEPT="application/json").status_code == 422
    assert api.get("/v1/events?after=abc", HTTP_ACCEPT="application/json").status_code == 422
    assert api.get("/v1/events?after=" + "1" * 20, HTTP_ACCEPT="application/json").status_code == 422
    assert api.get("/v1/events", HTTP_ACCEPT="application/json", HTTP_LAST_EVENT_ID="vno").status_code == 422
    assert api.get("/v1/events?after=" + "0" * 19, HTTP_ACCEPT="application/json").status_code == 200
    get = schema["paths"]["/v1/events"]["get"]
    assert _parameter(get, "limit")["schema"]["minimum"] == 1
    assert _parameter(get, "after")["schema"]["pattern"] == "^[0-9]{1,19}$"
    assert _parameter(get, "Last-Event-ID")["schema"]["pattern"] == "^([0-9]{1,19})?$"


# 7. A kill category in the path follows the server's rule.


def test_killswitch__category_path_pattern__is_the_servers_rule(api, schema):
    from flags.attributes import KILL_CATEGORY

    for method in ("get", "post", "delete"):
        category = _parameter(schema["paths"]["/v1/killswitch/{category}"][method], "category")
        assert category["schema"]["pattern"] == f"^{KILL_CATEGORY.pattern}$"
    assert api.delete("/v1/killswitch/Payments").status_code == 422
    assert api.get("/v1/killswitch/Payments").status_code == 422


# 8. `PUT /v1/automation`: a reason to pause, none needed to release; a reason that is no text → 422.


def test_automation__release_without_reason__200_and_pause_without_one__422(api):
    assert api.put("/v1/automation", {"paused": False}, format="json").status_code == 200
    assert api.put("/v1/automation", {"paused": False, "reason": ""}, format="json").status_code == 200
    assert api.put("/v1/automation", {"paused": True}, format="json").status_code == 422
    assert api.put("/v1/automation", {"paused": True, "reason": " "}, format="json").status_code == 422


@pytest.mark.parametrize("reason", [{}, [], 0, False])
def test_automation__reason_that_is_no_text__422_naming_reason(api, reason):
    response = api.put("/v1/automation", {"paused": False, "reason": reason}, format="json")
    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["reason"]


def test_openapi__automation_body__requires_a_reason_only_to_pause(schema):
    body = schema["paths"]["/v1/automation"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    pause, release = body["oneOf"]
    assert pause["properties"]["paused"]["enum"] == [True] and "reason" in pause["required"]
    assert release["properties"]["paused"]["enum"] == [False] and release["required"] == ["paused"]


# 9. `Idempotency-Key`: documented (maxLength 200) only where it is honoured, and checked in one place.


def test_openapi__idempotency_key__only_on_the_routes_that_replay(schema):
    documented = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert documented == {("post", "/v1/flags"), ("post", "/v1/segments")}
    for method, path in documented:
        assert _parameter(schema["paths"][path][method], "Idempotency-Key")["schema"]["maxLength"] == 200


@pytest.mark.parametrize("route", ["/v1/flags", "/v1/segments"])
def test_idempotency_key__over_200_characters__422_naming_it(api, route):
    response = api.post(route, {"key": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert response.status_code == 422
    assert list(response.json()["error"]["details"]["fields"]) == ["Idempotency-Key"]


# 10. An empty description is a description.


@pytest.mark.parametrize("route", ["/v1/flags", "/v1/segments"])
def test_create__empty_description__201_and_the_schema_allows_it(api, schema, route):
    assert api.post(route, {"key": "k", "description": ""}, format="json").status_code == 201
    for name in ("FlagRequest", "SegmentRequest", "FlagReplaceRequest", "SegmentReplaceRequest"):
        assert "minLength" not in _components(schema)[name]["properties"]["description"], name


# 11. `PUT` names the entity in the path: the body may leave `key` out.


def test_put_without_key__200_and_the_schema_does_not_require_it(api, schema):
    api.post("/v1/flags", {"key": "f", "state": "on"}, format="json")
    api.post("/v1/segments", {"key": "s"}, format="json")
    assert api.put("/v1/flags/f", {"state": "off"}, format="json").status_code == 200
    assert api.put("/v1/segments/s", {"included": ["u-1"]}, format="json").status_code == 200
    for path in ("/v1/flags/{key}", "/v1/segments/{key}"):
        ref = schema["paths"][path]["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert "key" not in _components(schema)[ref.rsplit("/", 1)[1]].get("required", []), path
    assert "key" in _components(schema)["FlagRequest"]["required"]  # create still needs it


# 12. No body is not JSON: 400, and the schema says the body is required.


def test_openapi__every_v1_request_body__is_required(schema):
    for path in (
        "/v1/flags/{key}",
        "/v1/segments/{key}",
        "/v1/webhooks/{webhook_id}",
        "/v1/change-requests/{cr_id}",
    ):
        assert schema["paths"][path]["patch"]["requestBody"]["required"] is True, path
    assert schema["paths"]["/v1/evaluate/preview"]["post"]["requestBody"]["required"] is True
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1/") and "requestBody" in operation:
                assert operation["requestBody"]["required"] is True, f"{method} {path}"


def test_patch_without_body__400(api):
    api.post("/v1/flags", {"key": "f", "state": "on"}, format="json")
    response = api.generic("PATCH", "/v1/flags/f", "", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
