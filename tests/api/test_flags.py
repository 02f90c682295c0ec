"""/v1/flags: the HTTP contract of api.md, Flags."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

FLAG = {
    "key": "checkout-redesign",
    "name": "Checkout redesign",
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 20}, {"key": "off", "value": False, "weight": 80}],
    "off_variant": "off",
    "tags": ["checkout"],
}


def audit_count(tenant, **filters):
    return AuditEntry.objects.for_tenant(tenant).filter(**filters).count()


def test_create__returns_201_with_document_and_etag(api, tenant):
    response = api.post("/v1/flags", FLAG, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "checkout-redesign"
    assert body["version"] == 1
    assert body["archived_at"] is None
    assert body["targets"]["deny"] == []
    assert response["ETag"] == '"1"'
    assert response["X-Request-ID"]
    assert audit_count(tenant, action="create") == 1


def test_create__boolean_without_variants__gets_on_off_and_defaults(api):
    body = api.post("/v1/flags", {"key": "plain"}, format="json").json()
    assert [v["key"] for v in body["variants"]] == ["on", "off"]
    assert body["type"] == "boolean"
    assert body["state"] == "off"
    assert body["off_variant"] == "off"
    assert body["bucket_by"] == "id"


def test_create__same_key_same_body__200_existing_and_no_new_audit_row(api, tenant):
    assert api.post("/v1/flags", FLAG, format="json").status_code == 201
    again = api.post("/v1/flags", FLAG, format="json")
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert audit_count(tenant) == 1


def test_create__same_key_different_body__409(api):
    api.post("/v1/flags", FLAG, format="json")
    response = api.post("/v1/flags", {**FLAG, "name": "Other"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_create__key_of_archived_flag__409(api):
    api.post("/v1/flags", FLAG, format="json")
    assert api.delete("/v1/flags/checkout-redesign").status_code == 204
    response = api.post("/v1/flags", FLAG, format="json")
    assert response.status_code == 409


def test_create__idempotency_key__replays_first_response(api, tenant):
    first = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert audit_count(tenant) == 1


def test_create__idempotency_key_reused_with_other_body__409(api):
    api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post("/v1/flags", {**FLAG, "key": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 409


@pytest.mark.parametrize("key", ["", "-leading-dash", "has space", "a/b", "x" * 129, "ünïcode"])
def test_create__bad_key__422_naming_key(api, key):
    response = api.post("/v1/flags", {"key": key}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert "key" in body["error"]["details"]["fields"]


def test_create__wrong_variant_value_type__422_names_the_variant(api):
    response = api.post(
        "/v1/flags",
        {"key": "n", "type": "number", "variants": [{"key": "a", "value": "1"}], "off_variant": "a"},
        format="json",
    )
    assert response.status_code == 422
    assert "variants[0].value" in response.json()["error"]["details"]["fields"]


def test_create__duplicate_variant_keys_and_negative_weight__422_lists_each(api):
    response = api.post(
        "/v1/flags",
        {"key": "d", "variants": [{"key": "on", "value": True, "weight": -1}, {"key": "on", "value": False}]},
        format="json",
    )
    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert any(path.startswith("variants[0].weight") for path in fields)
    assert any(path.startswith("variants[1].key") or path == "variants" for path in fields)


def test_create__unknown_operator__422_at_exact_path(api):
    rule = {
        "id": "r",
        "when": {"all": [{"attr": "plan", "op": "like", "value": "x"}]},
        "serve": {"variant": "on"},
    }
    response = api.post("/v1/flags", {"key": "u", "rules": [rule]}, format="json")
    assert response.status_code == 422
    assert "rules[0].when.all[0].op" in response.json()["error"]["details"]["fields"]


def test_create__unknown_segment__422(api):
    rule = {"id": "r", "when": {"segment": "ghosts"}, "serve": {"variant": "on"}}
    response = api.post("/v1/flags", {"key": "u", "rules": [rule]}, format="json")
    assert response.status_code == 422
    assert "rules[0].when.segment" in response.json()["error"]["details"]["fields"]


def test_create__unknown_prerequisite__422(api):
    response = api.post(
        "/v1/flags", {"key": "p", "prerequisites": [{"flag": "nope", "variants": ["on"]}]}, format="json"
    )
    assert response.status_code == 422
    assert any(k.startswith("prerequisites[0]") for k in response.json()["error"]["details"]["fields"])


def test_update__prerequisites_forming_a_cycle__409_naming_the_cycle(api):
    api.post("/v1/flags", {"key": "a"}, format="json")
    api.post("/v1/flags", {"key": "b", "prerequisites": [{"flag": "a", "variants": ["on"]}]}, format="json")
    response = api.patch("/v1/flags/a", {"prerequisites": [{"flag": "b", "variants": ["on"]}]}, format="json")
    assert response.status_code == 409
    body = response.json()["error"]
    assert body["code"] == "prerequisite_cycle"
    assert set(body["details"]["cycle"]) == {"a", "b"}


def test_create__json_value_over_32k__413(api):
    big = {"blob": "x" * (33 * 1024)}
    response = api.post(
        "/v1/flags",
        {"key": "j", "type": "json", "variants": [{"key": "a", "value": big}], "off_variant": "a"},
        format="json",
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_create__body_over_the_request_cap__413_and_nothing_stored(api, tenant):
    response = api.post("/v1/flags", {"key": "big", "description": "x" * (2 * 1024 * 1024)}, format="json")
    assert response.status_code == 413
    assert audit_count(tenant) == 0


def test_create__body_not_json__400(api):
    response = api.post("/v1/flags", "{oops", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_create__body_json_array__422(api):
    response = api.post("/v1/flags", [1, 2], format="json")
    assert response.status_code == 422


def test_get__etag_and_404_for_unknown(api):
    api.post("/v1/flags", FLAG, format="json")
    response = api.get("/v1/flags/checkout-redesign")
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    missing = api.get("/v1/flags/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] in ("not_found", "flag_not_found")


def test_put__full_replace_bumps_version_and_writes_one_audit_row(api, tenant):
    api.post("/v1/flags", FLAG, format="json")
    response = api.put("/v1/flags/checkout-redesign", {"name": "Renamed"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 2
    assert body["name"] == "Renamed"
    assert body["tags"] == []  # full replace: unspecified fields go back to their defaults
    assert response["ETag"] == '"2"'
    entry = AuditEntry.objects.for_tenant(tenant).get(action="update")
    assert entry.diff["name"] == {"from": "Checkout redesign", "to": "Renamed"}
    assert entry.before["version"] == 1 and entry.after["version"] == 2


def test_patch__partial_change_keeps_other_fields(api):
    api.post("/v1/flags", FLAG, format="json")
    body = api.patch("/v1/flags/checkout-redesign", {"state": "off"}, format="json").json()
    assert body["state"] == "off"
    assert body["tags"] == ["checkout"]


def test_update__stale_if_match__412_and_nothing_changes(api, tenant):
    api.post("/v1/flags", FLAG, format="json")
    api.patch("/v1/flags/checkout-redesign", {"name": "v2"}, format="json")
    response = api.patch("/v1/flags/checkout-redesign", {"name": "v3"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert api.get("/v1/flags/checkout-redesign").json()["name"] == "v2"


def test_update__stale_body_version__412(api):
    api.post("/v1/flags", FLAG, format="json")
    api.patch("/v1/flags/checkout-redesign", {"name": "v2"}, format="json")
    response = api.patch("/v1/flags/checkout-redesign", {"name": "v3", "version": 1}, format="json")
    assert response.status_code == 412


@pytest.mark.parametrize(("field", "value"), [("key", "renamed"), ("type", "string")])
def test_update__changing_key_or_type__422_naming_the_field(api, field, value):
    api.post("/v1/flags", FLAG, format="json")
    response = api.patch("/v1/flags/checkout-redesign", {field: value}, format="json")
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]["fields"]


def test_update__rejected_change_writes_nothing(api, tenant):
    api.post("/v1/flags", FLAG, format="json")
    response = api.patch("/v1/flags/checkout-redesign", {"off_variant": "missing"}, format="json")
    assert response.status_code == 422
    assert api.get("/v1/flags/checkout-redesign").json()["version"] == 1
    assert audit_count(tenant) == 1


def test_delete__archives_hides_and_restore_brings_back_as_new_version(api, tenant):
    api.post("/v1/flags", FLAG, format="json")
    assert api.delete("/v1/flags/checkout-redesign").status_code == 204
    assert api.get("/v1/flags/checkout-redesign").status_code == 404
    archived = api.get("/v1/flags/checkout-redesign?include_archived=true").json()
    assert archived["archived_at"] is not None
    assert api.get("/v1/flags").json()["count"] == 0
    assert api.get("/v1/flags?include_archived=true").json()["count"] == 1
    restored = api.post("/v1/flags/checkout-redesign/restore")
    assert restored.status_code == 200
    assert restored.json()["archived_at"] is None
    assert restored.json()["version"] == 3
    actions = list(AuditEntry.objects.for_tenant(tenant).order_by("seq").values_list("action", flat=True))
    assert actions == ["create", "archive", "restore"]
    archive_entry = AuditEntry.objects.for_tenant(tenant).get(action="archive")
    assert archive_entry.after["archived_at"] is not None


def test_versions__newest_first_with_actor_and_document(api):
    api.post("/v1/flags", FLAG, format="json")
    api.patch("/v1/flags/checkout-redesign", {"name": "v2"}, format="json")
    body = api.get("/v1/flags/checkout-redesign/versions").json()
    assert body["count"] == 2
    assert [v["version"] for v in body["results"]] == [2, 1]
    assert body["results"][0]["actor"].startswith("client:")
    assert body["results"][1]["flag"]["name"] == "Checkout redesign"


def test_rollback__makes_old_content_current_as_new_version(api, tenant):
    api.post("/v1/flags", FLAG, format="json")
    api.patch("/v1/flags/checkout-redesign", {"name": "v2", "state": "off"}, format="json")
    response = api.post("/v1/flags/checkout-redesign/rollback", {"version": 1}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 3
    assert body["name"] == "Checkout redesign"
    assert body["state"] == "on"
    assert audit_count(tenant, action="rollback") == 1


def test_rollback__to_a_version_that_never_existed__404_not_found(api):
    api.post("/v1/flags", FLAG, format="json")
    response = api.post("/v1/flags/checkout-redesign/rollback", {"version": 99}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("version", [0, -1, 2**53 - 1])
def test_rollback__an_integer_no_version_has__404_not_found(api, version):
    api.post("/v1/flags", FLAG, format="json")
    response = api.post("/v1/flags/checkout-redesign/rollback", {"version": version}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("version", ["latest", True, 1.5, None, [1]])
def test_rollback__not_a_version_number__422_at_version(api, version):
    api.post("/v1/flags", FLAG, format="json")
    response = api.post("/v1/flags/checkout-redesign/rollback", {"version": version}, format="json")
    assert response.status_code == 422, response.content
    assert "version" in response.json()["error"]["details"]["fields"]


def test_rollback__version_as_a_numeric_string__accepted(api):
    api.post("/v1/flags", FLAG, format="json")
    changed = api.patch("/v1/flags/checkout-redesign", {"name": "Renamed"}, format="json")
    assert changed.json()["version"] == 2
    response = api.post("/v1/flags/checkout-redesign/rollback", {"version": "1"}, format="json")
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["name"]) == (3, FLAG.get("name", ""))


def test_list__paginates_by_key_and_caps_limit(api):
    for index in range(5):
        api.post("/v1/flags", {"key": f"f-{index}"}, format="json")
    body = api.get("/v1/flags?limit=2&offset=1").json()
    assert body["count"] == 5
    assert [f["key"] for f in body["results"]] == ["f-1", "f-2"]
    assert body["next"] and body["previous"]
    assert len(api.get("/v1/flags?limit=1000").json()["results"]) == 5


def test_list__filters(api):
    api.post(
        "/v1/flags",
        {"key": "a-on", "state": "on", "tags": ["x"], "description": "Needle here"},
        format="json",
    )
    api.post("/v1/flags", {"key": "b-off", "tags": ["y"]}, format="json")
    api.post(
        "/v1/flags",
        {
            "key": "a-str",
            "type": "string",
            "variants": [{"key": "v", "value": "s", "weight": 1}],
            "off_variant": "v",
        },
        format="json",
    )
    keys = lambda q: [f["key"] for f in api.get(f"/v1/flags?{q}").json()["results"]]  # noqa: E731
    assert keys("state=on") == ["a-on"]
    assert keys("tag=y") == ["b-off"]
    assert keys("type=string") == ["a-str"]
    assert keys("key_prefix=a-") == ["a-on", "a-str"]
    assert keys("q=needle") == ["a-on"]


def test_list__bad_filter_value__422(api):
    assert api.get("/v1/flags?state=maybe").status_code == 422


def test_unknown_route_and_wrong_method__json_error_shape(api):
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["request_id"]
    wrong = api.put("/v1/flags", {}, format="json")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_route__unsafe_method_with_a_csrf_cookie__json_404_not_the_html_csrf_page(method):
    """CSRF protects the admin's cookie sessions; /v1 takes bearer tokens and answers in JSON only."""
    client = APIClient(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32
    response = getattr(client, method)("/v1/nothing-here", {"a": 1}, format="json")
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"] == "not_found"


def test_admin__post_without_csrf_token__still_refused(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403


def test_request_id__passed_through(api):
    response = api.get("/v1/flags", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_api_paths__skip_the_browser_only_layers(api, client):
    """Sessions, users and frame options serve the admin; an API response carries none of them."""
    response = api.get("/v1/flags")
    assert response.status_code == 200
    assert not response.cookies
    assert "X-Frame-Options" not in response
    admin = client.get("/admin/login/")
    assert admin.status_code == 200
    assert admin["X-Frame-Options"] == "DENY"
    assert "csrftoken" in admin.cookies


def test_get__if_none_match_current_version__304(api):
    api.post("/v1/flags", FLAG, format="json")
    assert api.get("/v1/flags/checkout-redesign", HTTP_IF_NONE_MATCH='"1"').status_code == 304
    api.patch("/v1/flags/checkout-redesign", {"name": "v2"}, format="json")
    assert api.get("/v1/flags/checkout-redesign", HTTP_IF_NONE_MATCH='"1"').status_code == 200


def test_get__if_none_match_weak_or_in_a_list__304(api):
    api.post("/v1/flags", FLAG, format="json")
    assert api.get("/v1/flags/checkout-redesign", HTTP_IF_NONE_MATCH='W/"1"').status_code == 304
    assert api.get("/v1/flags/checkout-redesign", HTTP_IF_NONE_MATCH='"7", "1"').status_code == 304
    assert api.get("/v1/flags/checkout-redesign", HTTP_IF_NONE_MATCH='"7"').status_code == 200


def test_segment_get__if_none_match_current_version__304(api):
    api.post("/v1/segments", {"key": "beta", "included": ["u1"]}, format="json")
    first = api.get("/v1/segments/beta")
    assert first["ETag"] == '"1"'
    again = api.get("/v1/segments/beta", HTTP_IF_NONE_MATCH=first["ETag"])
    assert (again.status_code, again["ETag"], again.content) == (304, '"1"', b"")
    api.patch("/v1/segments/beta", {"included": ["u2"]}, format="json")
    assert api.get("/v1/segments/beta", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_create__idempotency_key_older_than_24h__is_not_replayed(api, tenant):
    from datetime import timedelta

    from django.utils import timezone

    from tenancy.models import IdempotentResponse

    assert api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    IdempotentResponse.all_tenants.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    again = api.post("/v1/flags", FLAG, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 200  # answered afresh (same body → existing flag), not replayed
    assert not again.has_header("Idempotent-Replayed")
