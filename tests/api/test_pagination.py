"""`?limit=&offset=` on every list route: what DRF would quietly replace is refused, naming the parameter
(an empty value is "not given": tests/api/test_openapi_agreement.py)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "route",
    ["/v1/flags", "/v1/segments", "/v1/audit", "/v1/change-requests", "/v1/webhooks", "/v1/killswitch"],
)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=1e3", "offset"),
        ("offset=" + "9" * 400, "offset"),
        ("offset=%EF%BC%91", "offset"),
    ],
)
def test_list__a_bad_limit_or_offset__is_422_naming_it(api, route, query, field):
    response = api.get(f"{route}?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["details"]["fields"]) == [field]


def test_list__a_limit_over_the_cap__is_capped_not_refused(api):
    for n in range(3):
        api.post("/v1/segments", {"key": f"s-{n}"}, format="json")
    response = api.get("/v1/segments?limit=5000&offset=1")
    assert response.status_code == 200
    assert [s["key"] for s in response.json()["results"]] == ["s-1", "s-2"]
    assert "limit=200" in (response.json()["previous"] or "")
