"""`/ofrep/v1/evaluate/flags[/{key}]` (api.md, OFREP; rules.md, Reasons mapped to OpenFeature)."""

from __future__ import annotations

import copy
import json

import pytest
from django.conf import settings as django_settings

from tests.factories import make_flag, make_segment

ONE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"
CONTEXT = {"context": {"targetingKey": "u-42", "plan": "pro", "country": "NL"}}


def ofrep_flags(tenant):
    """A flag for every OpenFeature reason and every value type (also the OpenFeature SDK tests')."""
    make_segment(tenant, "pro-users", when={"attr": "plan", "op": "eq", "value": "pro"})
    make_flag(
        tenant,
        "checkout",
        state="on",
        targets={"allow": ["u-vip"], "deny": ["u-banned"]},
        rules=[{"id": "pros", "when": {"segment": "pro-users"}, "serve": {"variant": "on"}}],
        default={"variant": "off"},
    )
    make_flag(tenant, "static-on", state="on", default={"variant": "on"})
    make_flag(tenant, "switched-off", state="off")
    make_flag(
        tenant,
        "split",
        state="on",
        variants=[{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
    )
    make_flag(tenant, "needs-checkout", state="on", prerequisites=[{"flag": "checkout", "variants": ["on"]}])
    make_flag(
        tenant,
        "by-account",
        state="on",
        bucket_by="account_id",
        variants=[{"key": "on", "value": True, "weight": 1}, {"key": "off", "value": False, "weight": 1}],
    )
    make_flag(
        tenant,
        "banner",
        type="string",
        state="on",
        variants=[{"key": "a", "value": "Hello", "weight": 1}],
        off_variant="a",
        default={"variant": "a"},
    )
    make_flag(
        tenant,
        "limits",
        type="json",
        state="on",
        variants=[{"key": "std", "value": {"max": 3, "tags": ["x"]}, "weight": 1}],
        off_variant="std",
        default={"variant": "std"},
    )
    make_flag(
        tenant,
        "max-items",
        type="number",
        state="on",
        variants=[{"key": "few", "value": 3, "weight": 1}, {"key": "ratio", "value": 0.25, "weight": 0}],
        off_variant="few",
        rules=[{"id": "pros", "when": {"segment": "pro-users"}, "serve": {"variant": "ratio"}}],
        default={"variant": "few"},
    )
    return tenant


@pytest.fixture
def flags(tenant):
    return ofrep_flags(tenant)


def ofrep(api, key, body=CONTEXT, **extra):
    return api.post(ONE.format(key), body, format="json", **extra)


def context(targeting_key="u-42", **attributes):
    return {"context": {"targetingKey": targeting_key, **attributes}}


@pytest.mark.django_db
def test_ofrep__rule_match__success_shape_with_our_reason_in_metadata(api, flags):
    response = ofrep(api, "checkout")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"key", "value", "variant", "reason", "metadata"}
    assert body["key"] == "checkout" and body["value"] is True and body["variant"] == "on"
    assert body["reason"] == "TARGETING_MATCH"
    server = api.post(
        "/v1/evaluate",
        {"flag_key": "checkout", "user": {"id": "u-42", "attributes": {"plan": "pro", "country": "NL"}}},
        format="json",
    ).json()
    assert body["metadata"] == {
        "reason": "RULE_MATCH",
        "rule_id": "pros",
        "flag_version": server["details"]["flag_version"],
        "bucket": server["details"]["bucket"],
    }
    assert all(isinstance(value, str | int | float | bool) for value in body["metadata"].values())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "body", "reason", "ours"),
    [
        ("switched-off", context(), "DISABLED", "OFF"),
        ("checkout", context("u-vip"), "TARGETING_MATCH", "TARGET_MATCH"),
        ("checkout", context("u-banned", plan="pro"), "TARGETING_MATCH", "TARGET_MATCH"),
        ("checkout", context("u-1", plan="free"), "DEFAULT", "DEFAULT"),
        ("static-on", context(), "STATIC", "DEFAULT"),
        ("split", context(), "SPLIT", "PERCENTAGE_ROLLOUT"),
        ("needs-checkout", context("u-1", plan="free"), "DEFAULT", "PREREQUISITE_FAILED"),
        ("by-account", context("u-1"), "ERROR", "ERROR"),
    ],
)
def test_ofrep__reasons_mapped_as_rules_md_says(api, flags, key, body, reason, ours):
    answer = ofrep(api, key, body).json()
    assert answer["reason"] == reason
    assert answer["metadata"]["reason"] == ours


@pytest.mark.django_db
def test_ofrep__prerequisite_failed_and_error__metadata_says_which(api, flags):
    failed = ofrep(api, "needs-checkout", context("u-1", plan="free")).json()
    assert failed["metadata"]["prerequisite"] == "checkout"
    assert failed["variant"] == "off" and failed["value"] is False

    error = ofrep(api, "by-account", context("u-1")).json()
    assert error["metadata"]["error_code"] == "NOT_BUCKETABLE"
    assert "bucket" not in error["metadata"]


@pytest.mark.django_db
def test_ofrep__string_and_object_values(api, flags):
    assert ofrep(api, "banner").json()["value"] == "Hello"
    assert ofrep(api, "limits").json()["value"] == {"max": 3, "tags": ["x"]}


@pytest.mark.django_db(transaction=True)
def test_ofrep__unknown_or_archived_flag__404_flag_not_found_in_ofreps_shape(api, flags):
    api.delete("/v1/flags/banner")
    for key in ("banner", "never-existed", "not a key!"):
        response = ofrep(api, key)
        assert response.status_code == 404
        body = response.json()
        assert body["key"] == key and body["errorCode"] == "FLAG_NOT_FOUND"
        assert isinstance(body["errorDetails"], str) and body["errorDetails"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "TARGETING_KEY_MISSING"),
        ({"context": {}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": ""}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": None, "plan": "pro"}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": 42}}, "INVALID_CONTEXT"),
        ({"context": "u-42"}, "INVALID_CONTEXT"),
        ({"context": ["u-42"]}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "x" * 300}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u-1", "plan": "a\x00b"}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u-1", "n": 2**60}}, "INVALID_CONTEXT"),
        ([], "PARSE_ERROR"),
        ("u-42", "PARSE_ERROR"),
    ],
)
def test_ofrep__bad_context__400_in_ofreps_shape(api, flags, body, code):
    for path in (ONE.format("checkout"), BULK):
        response = api.post(path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        answer = response.json()
        assert answer["errorCode"] == code
        assert isinstance(answer["errorDetails"], str) and answer["errorDetails"]
        assert answer.get("key") == ("checkout" if path != BULK else None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{not json", "application/json", "PARSE_ERROR"),
        (b'{"context": NaN}', "application/json", "PARSE_ERROR"),
        (b"\xff\xfe", "application/json", "PARSE_ERROR"),
        (json.dumps(CONTEXT).encode(), "text/plain", "PARSE_ERROR"),
        (json.dumps(CONTEXT).encode(), "application/x-www-form-urlencoded", "PARSE_ERROR"),
        (json.dumps(CONTEXT).encode(), "application/json; charset=latin-1", "PARSE_ERROR"),
        (b'{"context": ' * 100 + b"{}" + b"}" * 100, "application/json", "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": "u-1", "s": "\\u0000"}}', "application/json", "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": "u-1", "n": 1e999}}', "application/json", "INVALID_CONTEXT"),
    ],
)
def test_ofrep__hostile_body__400_never_500(api, flags, raw, content_type, code):
    for path in (ONE.format("checkout"), BULK):
        response = api.generic("POST", path, raw, content_type=content_type)
        assert response.status_code == 400, (path, response.content)
        assert response.json()["errorCode"] == code


@pytest.mark.django_db
def test_ofrep__body_over_the_cap__413_in_our_shape(api, flags):
    huge = {"context": {"targetingKey": "u-1", "blob": "x" * (django_settings.API_MAX_BODY_BYTES + 10)}}
    response = ofrep(api, "checkout", huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.django_db
def test_ofrep__json_with_utf8_charset_accepted(api, flags):
    raw = json.dumps(CONTEXT).encode()
    response = api.generic(
        "POST", ONE.format("checkout"), raw, content_type="application/json; charset=UTF-8"
    )
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ONE.format("checkout"), BULK])
def test_ofrep__auth_as_v1(client, make_api, tenant, other_tenant, flags, path):
    anonymous = client.post(path, CONTEXT, content_type="application/json", HTTP_X_TENANT_ID="acme")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")

    other = make_api(other_tenant, tenant_header="acme").post(path, CONTEXT, format="json")
    assert other.status_code == 403 and other.json()["error"]["code"] == "tenant_mismatch"

    no_scope = make_api(tenant, scopes=["flags:read"]).post(path, CONTEXT, format="json")
    assert no_scope.status_code == 403 and no_scope.json()["error"]["code"] == "insufficient_scope"

    # 400 is OFREP's own shape (api.md): tests/api/test_openapi_agreement.py
    no_tenant = make_api(tenant, tenant_header="").post(path, CONTEXT, format="json")
    assert no_tenant.status_code == 400 and no_tenant.json()["errorCode"] == "INVALID_CONTEXT"

    assert make_api(tenant, scopes=["evaluate"]).post(path, CONTEXT, format="json").status_code == 200


@pytest.mark.django_db
def test_ofrep__another_tenants_flag__404(flags, make_api, other_tenant):
    response = ofrep(make_api(other_tenant), "checkout")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "FLAG_NOT_FOUND"


@pytest.mark.django_db
def test_ofrep_bulk__every_live_flag_by_key_with_an_etag(api, flags):
    response = api.post(BULK, CONTEXT, format="json")

    assert response.status_code == 200
    body = response.json()
    assert [flag["key"] for flag in body["flags"]] == sorted(
        [
            "checkout",
            "static-on",
            "switched-off",
            "split",
            "needs-checkout",
            "by-account",
            "banner",
            "limits",
            "max-items",
        ]
    )
    assert body["flags"][[f["key"] for f in body["flags"]].index("checkout")] == ofrep(api, "checkout").json()
    assert response["ETag"].startswith('"') and response["ETag"].endswith('"')


@pytest.mark.django_db(transaction=True)
def test_ofrep_bulk__if_none_match__304_until_the_answers_change(api, flags):
    first = api.post(BULK, CONTEXT, format="json")

    same = api.post(BULK, CONTEXT, format="json", HTTP_IF_NONE_MATCH=first["ETag"])
    assert same.status_code == 304 and same.content == b"" and same["ETag"] == first["ETag"]

    other_user = api.post(BULK, context("u-7"), format="json", HTTP_IF_NONE_MATCH=first["ETag"])
    assert other_user.status_code == 200, "another context has other answers"

    api.patch("/v1/flags/banner", {"state": "off"}, format="json")
    changed = api.post(BULK, CONTEXT, format="json", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]


@pytest.mark.django_db
def test_ofrep__rate_limited__429_with_retry_after_seconds(api, flags, settings):
    rest = copy.deepcopy(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"]["ofrep"] = "2/min"
    settings.REST_FRAMEWORK = rest

    statuses = [ofrep(api, "checkout").status_code for _ in range(2)]
    limited = api.post(BULK, CONTEXT, format="json")

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


@pytest.mark.django_db
def test_ofrep__not_rate_limited_by_default(api, flags):
    assert {ofrep(api, "static-on").status_code for _ in range(30)} == {200}
