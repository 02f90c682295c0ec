"""Hostile input (issue 10, item 1): every request below gets the one error shape and changes nothing.

Deep JSON, NUL and lone surrogates, numbers no other SDK can read, out-of-range headers, dates, page
parameters and token claims. Each test runs on SQLite and, in the PostgreSQL pass of `make test`, on
PostgreSQL, where NUL characters and lone surrogates used to reach the driver and answer 500.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from audit.models import AuditEntry
from flags.models import Flag, FlagVersion
from segments.models import Segment
from tenancy.models import IdempotentResponse, Tenant
from tests.conftest import token_for
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db

FAR_FUTURE = 4_102_444_800  # 2100-01-01: fixed, so that parametrised test ids are the same in every process

BODY_DEPTH_LIMIT = 64

FLAG = {
    "key": "checkout",
    "state": "on",
    "variants": [{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
    "off_variant": "off",
}
NUMBER_FLAG = {
    "key": "price",
    "type": "number",
    "state": "on",
    "variants": [{"key": "low", "value": 1}, {"key": "high", "value": 2}],
    "off_variant": "low",
    "default": {"variant": "low"},
}


def nested_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def nested_condition(levels: int) -> dict[str, Any]:
    """A condition of `levels` objects: `not` around `not` ... around one leaf."""
    condition: dict[str, Any] = {"attr": "country", "op": "eq", "value": "NL"}
    for _ in range(levels - 1):
        condition = {"not": condition}
    return condition


def nested_condition_text(levels: int) -> str:
    """The same as JSON text, built without recursion (json.dumps could not write 5,000 levels)."""
    return '{"not": ' * (levels - 1) + '{"attr": "country", "op": "eq", "value": "NL"}' + "}" * (levels - 1)


def snapshot(tenant: Tenant) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    tenant.refresh_from_db()
    return {
        "flags": sorted(Flag.objects.for_tenant(tenant).values_list("key", "version", "archived_at", "name")),
        "versions": FlagVersion.objects.for_tenant(tenant).count(),
        "segments": sorted(Segment.objects.for_tenant(tenant).values_list("key", "version", "name")),
        "audit": AuditEntry.objects.for_tenant(tenant).count(),
        "idempotent": IdempotentResponse.objects.for_tenant(tenant).count(),
        "ruleset_version": tenant.ruleset_version,
    }


@pytest.fixture
def seeded(tenant: Tenant) -> Tenant:
    make_segment(tenant, "beta", included=["u-1"])
    make_flag(tenant, "checkout", **{k: v for k, v in FLAG.items() if k != "key"})
    make_flag(tenant, "price", **{k: v for k, v in NUMBER_FLAG.items() if k != "key"})
    return tenant


def send(client: APIClient, method: str, path: str, raw: str | bytes, **headers: Any) -> Any:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return client.generic(method, path, data, content_type="application/json", **headers)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    if field is not None:
        assert field in body["error"]["details"]["fields"], body
    return dict(body["error"])


# --- JSON nested 10,000 levels, on every route that reads a body ------------------------------------

WRITE_ROUTES = [
    ("POST", "/v1/flags"),
    ("PUT", "/v1/flags/checkout"),
    ("PATCH", "/v1/flags/checkout"),
    ("POST", "/v1/flags/checkout/rollback"),
    ("POST", "/v1/segments"),
    ("PUT", "/v1/segments/beta"),
    ("PATCH", "/v1/segments/beta"),
    ("POST", "/v1/evaluate"),
    ("POST", "/v1/evaluate/bulk"),
    ("POST", "/v1/evaluate/preview"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
@pytest.mark.parametrize("levels", [10_000, BODY_DEPTH_LIMIT + 1])
def test_body__nested_past_the_limit__422_naming_the_limit_and_nothing_stored(
    api, seeded, method, path, levels
):
    before = snapshot(seeded)
    raw = '{"key": "checkout", "user": {"id": "u"}, "x": ' + nested_array(levels - 1) + "}"
    error = assert_error(send(api, method, path, raw), 422, "validation_error", "body")
    assert f"deeper than {BODY_DEPTH_LIMIT} levels" in error["message"]
    assert snapshot(seeded) == before


@pytest.mark.parametrize(("levels", "status"), [(BODY_DEPTH_LIMIT - 3, 200), (BODY_DEPTH_LIMIT - 2, 422)])
def test_body__nested_exactly_to_the_limit__accepted_one_more__refused(api, seeded, levels, status):
    """body 1, user 2, attributes 3: an attribute of 61 nested lists reaches level 64."""
    raw = (
        '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"deep": ' + nested_array(levels) + "}}}"
    )
    assert send(api, "POST", "/v1/evaluate", raw).status_code == status


def test_body__brackets_inside_strings__do_not_count_as_nesting(api, seeded):
    """Brackets inside strings do not nest: a regex full of them is fine."""
    pattern = "[" * 200 + "a" + "]" * 200
    raw = json.dumps({"key": "brackets", "description": pattern, "state": "off"})
    assert send(api, "POST", "/v1/flags", raw).status_code == 201


def test_token__anonymous_body_nested_10000_levels__422(db):
    response = send(APIClient(), "POST", "/v1/auth/token", nested_array(10_000))
    assert_error(response, 422, "validation_error", "body")


def test_token__nested_object_body__422_and_no_500(db):
    raw = '{"client_id": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + ', "client_secret": "s"}'
    assert_error(send(APIClient(), "POST", "/v1/auth/token", raw), 422, "validation_error", "body")


def test_flag__condition_nested_5000_levels__422_naming_the_limit(api, seeded):
    before = snapshot(seeded)
    raw = (
        '{"key": "deep", "state": "on", "rules": [{"id": "r", "serve": {"variant": "on"}, "when": '
        + nested_condition_text(5_000)
        + "}]}"
    )
    error = assert_error(send(api, "POST", "/v1/flags", raw), 422, "validation_error", "body")
    assert str(BODY_DEPTH_LIMIT) in error["message"]
    assert snapshot(seeded) == before


def test_flag__condition_nested_past_16_levels__422_at_the_exact_path(api, seeded):
    """Under the body's limit, the engine's own cap on conditions speaks, at the exact field path."""
    before = snapshot(seeded)
    body = {
        "key": "deep",
        "state": "on",
        "rules": [{"id": "r", "when": nested_condition(40), "serve": {"variant": "on"}}],
    }
    response = api.post("/v1/flags", body, format="json")
    error = assert_error(response, 422, "validation_error", "rules[0].when" + ".not" * 16)
    assert "16" in error["details"]["fields"]["rules[0].when" + ".not" * 16][0]
    assert snapshot(seeded) == before


def test_flag__deepest_valid_condition__fits_in_a_preview_body(api, seeded):
    """The limit is measured, not guessed: the deepest condition the rules allow (16 levels of `all`,
    a list value at the bottom) inside a draft flag inside a preview request is under the body's cap."""
    condition: dict[str, Any] = {"attr": "country", "op": "in", "value": ["NL", "BE"]}
    for _ in range(15):
        condition = {"all": [condition]}
    draft = {**FLAG, "key": "deep", "rules": [{"id": "r", "when": condition, "serve": {"variant": "on"}}]}
    body = {"flag_key": "deep", "flag": draft, "user": {"id": "u", "attributes": {"country": "NL"}}}
    assert json_depth(body) < BODY_DEPTH_LIMIT
    response = api.post("/v1/evaluate/preview", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["reason"] == "RULE_MATCH"


def json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


# --- NUL and lone surrogates ---------------------------------------------------------------------------

NUL = "\\u0000"
SURROGATE = "\\ud800"


@pytest.mark.parametrize("bad", [NUL, SURROGATE, "\\udc00", "a\\ud800b"])
@pytest.mark.parametrize(
    ("method", "path", "template", "field"),
    [
        ("POST", "/v1/flags", '{"key": "new", "name": "@"}', "name"),
        ("POST", "/v1/flags", '{"key": "new", "tags": ["ok", "@"]}', "tags[1]"),
        ("PATCH", "/v1/flags/checkout", '{"description": "@"}', "description"),
        (
            "PUT",
            "/v1/flags/checkout",
            '{"key": "checkout", "targets": {"allow": ["@"]}}',
            "targets.allow[0]",
        ),
        ("POST", "/v1/segments", '{"key": "new", "included": ["@"]}', "included[0]"),
        ("PATCH", "/v1/segments/beta", '{"name": "@"}', "name"),
        ("POST", "/v1/evaluate", '{"flag_key": "@", "user": {"id": "u"}}', "flag_key"),
        ("POST", "/v1/evaluate", '{"flag_key": "checkout", "user": {"id": "@"}}', "user.id"),
        (
            "POST",
            "/v1/evaluate",
            '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"a": "@"}}}',
            "user.attributes.a",
        ),
        ("POST", "/v1/evaluate/bulk", '{"flag_keys": ["@"], "user": {"id": "u"}}', "flag_keys[0]"),
        ("POST", "/v1/evaluate/preview", '{"flag_key": "@", "user": {"id": "u"}}', "flag_key"),
        (
            "POST",
            "/v1/evaluate/preview",
            '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"country": "@"}}}',
            "user.attributes.country",
        ),
        ("POST", "/v1/auth/token", '{"client_id": "@", "client_secret": "s"}', "client_id"),
    ],
)
def test_body__string_with_nul_or_lone_surrogate__422_naming_the_field(
    api, seeded, method, path, template, field, bad
):
    before = snapshot(seeded)
    response = send(api, method, path, template.replace("@", bad), HTTP_IDEMPOTENCY_KEY="hostile-1")
    assert_error(response, 422, "validation_error", field)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_body__field_name_with_nul_or_lone_surrogate__422_at_its_object(api, seeded, bad):
    raw = '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"a@": 1}}}'.replace("@", bad)
    assert_error(send(api, "POST", "/v1/evaluate", raw), 422, "validation_error", "user.attributes")


def test_body__surrogate_pair__is_text_and_accepted(api, seeded):
    """A high and a low surrogate escape together are one character (U+1F600), not a lone one."""
    raw = '{"key": "emoji", "name": "smile \\ud83d\\ude00"}'
    response = send(api, "POST", "/v1/flags", raw)
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "smile \U0001f600"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/flags", "q"),
        ("/v1/flags", "tag"),
        ("/v1/flags", "key_prefix"),
        ("/v1/flags", "state"),
        ("/v1/flags", "type"),
        ("/v1/flags", "include_archived"),
        ("/v1/flags", "limit"),
        ("/v1/flags", "offset"),
        ("/v1/flags/checkout", "include_archived"),
        ("/v1/flags/checkout/versions", "include_archived"),
        ("/v1/flags/checkout/versions", "limit"),
        ("/v1/segments", "q"),
        ("/v1/segments", "key_prefix"),
        ("/v1/segments", "offset"),
        ("/v1/audit", "actor"),
        ("/v1/audit", "entity_key"),
        ("/v1/audit", "flag_key"),
        ("/v1/audit", "entity"),
        ("/v1/audit", "action"),
        ("/v1/audit", "since"),
        ("/v1/audit", "until"),
        ("/v1/audit", "limit"),
    ],
)
def test_query__nul_in_any_filter__422_naming_the_parameter(api, seeded, path, param):
    response = api.get(f"{path}?{param}=a%00b")
    assert_error(response, 422, "validation_error", param)


# --- Numbers: non-finite, and integers no double holds ---------------------------------------------------


def test_preview__attribute_1e999__422_naming_it_not_a_500(api, seeded):
    raw = '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"n": 1e999}}}'
    assert_error(send(api, "POST", "/v1/evaluate/preview", raw), 422, "validation_error", "user.attributes.n")


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400"])
@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/evaluate/bulk", "/v1/evaluate/preview"])
def test_evaluate__non_finite_attribute__422(api, seeded, path, number):
    raw = '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"n": @}}}'.replace("@", number)
    assert_error(send(api, "POST", path, raw), 422, "validation_error", "user.attributes.n")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/evaluate/preview", "/v1/flags", "/v1/auth/token"])
def test_body__nan_or_infinity_literal__400_not_json(api, seeded, path, literal):
    raw = '{"flag_key": "checkout", "key": "x", "user": {"id": "u", "attributes": {"n": @}}}'.replace(
        "@", literal
    )
    assert_error(send(api, "POST", path, raw), 400, "malformed_request")


def test_flag__variant_value_of_400_digits__422_naming_it(api, seeded):
    before = snapshot(seeded)
    raw = json.dumps({**NUMBER_FLAG, "key": "huge"}).replace('"value": 2', '"value": ' + "9" * 400)
    assert_error(send(api, "POST", "/v1/flags", raw), 422, "validation_error", "variants[1].value")
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    ("number", "accepted"),
    [
        (2**53 - 1, True),
        (-(2**53 - 1), True),
        (2**53, False),
        (-(2**53), False),
        (10**30, False),
    ],
)
def test_flag__integers_past_what_a_double_holds__refused(api, seeded, number, accepted):
    raw = json.dumps({**NUMBER_FLAG, "key": "edge"}).replace('"value": 2', f'"value": {number}')
    response = send(api, "POST", "/v1/flags", raw)
    if accepted:
        assert response.status_code == 201, response.content
        assert response.json()["variants"][1]["value"] == number
    else:
        assert_error(response, 422, "validation_error", "variants[1].value")


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (
            '{"key": "w", "variants": [{"key": "on", "value": true, "weight": @}, {"key": "off", "value": false}]}',
            "variants[0].weight",
        ),
        (
            '{"key": "w", "rules": [{"id": "r", "when": {"attr": "n", "op": "gt", "value": @}, "serve": {"variant": "on"}}]}',
            "rules[0].when.value",
        ),
        (
            '{"key": "w", "rules": [{"id": "r", "when": {"attr": "n", "op": "in", "value": [1, @]}, "serve": {"variant": "on"}}]}',
            "rules[0].when.value[1]",
        ),
        (
            '{"key": "w", "type": "json", "variants": [{"key": "a", "value": {"deep": [@]}}], "off_variant": "a"}',
            "variants[0].value.deep[0]",
        ),
    ],
)
def test_flag__huge_number_anywhere__422_at_its_path(api, seeded, template, field):
    before = snapshot(seeded)
    assert_error(
        send(api, "POST", "/v1/flags", template.replace("@", "1" * 400)), 422, "validation_error", field
    )
    assert_error(
        send(api, "POST", "/v1/flags", template.replace("@", "1e999")), 422, "validation_error", field
    )
    assert snapshot(seeded) == before


def test_evaluate__user_attribute_past_2_53__422(api, seeded):
    raw = '{"flag_key": "checkout", "user": {"id": "u", "attributes": {"account": 12345678901234567890}}}'
    assert_error(send(api, "POST", "/v1/evaluate", raw), 422, "validation_error", "user.attributes.account")


# --- Headers, dates, pages, token claims --------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match", ['"' + "9" * 8000 + '"', "9" * 8000, '"²"', '"١٢"', '"9007199254740992"']
)
@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_if_match__not_a_version_we_could_hold__422_naming_it(api, seeded, method, if_match):
    before = snapshot(seeded)
    response = api.generic(
        method,
        "/v1/flags/checkout",
        json.dumps({"key": "checkout", "name": "n"}),
        content_type="application/json",
        HTTP_IF_MATCH=if_match,
    )
    assert_error(response, 422, "validation_error", "If-Match")
    assert snapshot(seeded) == before


def test_if_match__segment_delete_with_8000_digits__422(api, seeded):
    before = snapshot(seeded)
    response = api.delete("/v1/segments/beta", HTTP_IF_MATCH="9" * 8000)
    assert_error(response, 422, "validation_error", "If-Match")
    assert snapshot(seeded) == before


def test_body_version__8000_digits__422_naming_it(api, seeded):
    before = snapshot(seeded)
    raw = '{"name": "n", "version": ' + "9" * 8000 + "}"
    assert_error(send(api, "PATCH", "/v1/flags/checkout", raw), 422, "validation_error", "version")
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    "value",
    [
        "0000-01-01",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "10000-01-01",
        "2026-02-30",
        "2026-13-01",
        "2026-01-01T25:00:00Z",
        "99999999999999999999",
    ],
)
@pytest.mark.parametrize("param", ["since", "until"])
def test_audit__date_out_of_range__422_naming_the_parameter(api, seeded, param, value):
    response = api.get("/v1/audit", {param: value})
    assert_error(response, 422, "validation_error", param)


def test_audit__extreme_but_real_dates__answer_200(api, seeded):
    response = api.get("/v1/audit", {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 3


@pytest.mark.parametrize("path", ["/v1/flags", "/v1/segments", "/v1/audit", "/v1/flags/checkout/versions"])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "-1"),
        ("limit", "0"),
        ("limit", "abc"),
        ("limit", "1.5"),
        ("limit", "²"),
        ("offset", "-1"),
        ("offset", "abc"),
        ("offset", "9" * 17),
        ("offset", "9" * 8000),
    ],
)
def test_pagination__negative_or_non_numeric__422_naming_the_parameter(api, seeded, path, param, value):
    # Empty is "not given" (the schema says `allowEmptyValue`): tests/api/test_openapi_agreement.py.
    assert_error(api.get(path, {param: value}), 422, "validation_error", param)


@pytest.mark.parametrize("path", ["/v1/flags", "/v1/audit"])
def test_pagination__large_limit__is_capped_not_refused(api, seeded, path):
    response = api.get(path, {"limit": "9" * 40})
    assert response.status_code == 200, response.content


def signed_token(tenant: Tenant, claims: dict[str, Any]) -> str:
    """A token signed with our secret (only we can make one) whose claims are then changed."""
    _, good = token_for(tenant)
    payload = jwt.decode(good, settings.JWT_SECRET, algorithms=["HS256"]) | claims
    return jwt.encode(payload, settings.JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": str(FAR_FUTURE)},
        {"exp": "soon"},
        {"exp": True},
        {"exp": [FAR_FUTURE]},
        {"exp": 10**30},
        {"exp": 1e300},
        {"exp": -(10**30)},
        {"iat": 10**30},
        {"iat": "yesterday"},
        {"scope": ["flags:read"]},
        {"scope": None},
        {"tenant": ["acme"]},
        {"tenant": 7},
        {"sub": {"id": 1}},
        {"jti": 5},
        {"token_type": ["access"]},
    ],
    ids=repr,
)
@pytest.mark.parametrize("path", ["/v1/flags", "/v1/evaluate"])
def test_token__malformed_claims__401_unauthenticated(tenant, claims, path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_token(tenant, claims)}", HTTP_X_TENANT_ID="acme")
    if path == "/v1/evaluate":
        response = client.post(path, {"flag_key": "x", "user": {"id": "u"}}, format="json")
    else:
        response = client.get(path)
    assert_error(response, 401, "unauthenticated")
