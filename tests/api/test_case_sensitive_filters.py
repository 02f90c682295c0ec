"""Keys and tags are case-sensitive (api.md), and so are the filters over them, on SQLite too
(whose `LIKE` ignores case) as on PostgreSQL."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def _keys(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return sorted(item["key"] for item in response.json()["results"])


def test_flags_key_prefix__matches_case(api: APIClient, tenant: Tenant) -> None:
    for key in ("CaseKey", "casekey2", "Case_other", "case"):
        make_flag(tenant, key)
    assert _keys(api.get("/v1/flags", {"key_prefix": "Case"})) == ["CaseKey", "Case_other"]
    assert _keys(api.get("/v1/flags", {"key_prefix": "case"})) == ["case", "casekey2"]


def test_flags_key_prefix__like_wildcards_are_plain_text(api: APIClient, tenant: Tenant) -> None:
    for key in ("a_b", "axb", "abc"):
        make_flag(tenant, key)
    assert _keys(api.get("/v1/flags", {"key_prefix": "a_"})) == ["a_b"]
    assert _keys(api.get("/v1/flags", {"key_prefix": "a%"})) == []


def test_flags_tag__matches_case(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "lower", tags=["t1"])
    make_flag(tenant, "upper", tags=["T1"])
    assert _keys(api.get("/v1/flags", {"tag": "T1"})) == ["upper"]
    assert _keys(api.get("/v1/flags", {"tag": "t1"})) == ["lower"]


def test_segments_key_prefix__matches_case(api: APIClient) -> None:
    for key in ("SegCase", "segcase2", "seg-x"):
        assert api.post("/v1/segments", {"key": key}, format="json").status_code == 201
    assert _keys(api.get("/v1/segments", {"key_prefix": "Seg"})) == ["SegCase"]
    assert _keys(api.get("/v1/segments", {"key_prefix": "seg"})) == ["seg-x", "segcase2"]
