"""Optimistic concurrency: every write path refuses a stale version the same way (tenancy.versioning)."""

from __future__ import annotations

import pytest

from flags.models import Flag
from segments.models import Segment
from tenancy.entities import BulkWriteRefused

FLAG = {
    "key": "f",
    "variants": [{"key": "on", "value": True, "weight": 0}, {"key": "off", "value": False, "weight": 100}],
    "off_variant": "off",
}
SEGMENT = {"key": "s", "included": ["u-1"]}


@pytest.mark.parametrize(
    ("collection", "document", "entity", "method"),
    [
        ("flags", FLAG, "flag", "patch"),
        ("flags", FLAG, "flag", "delete"),
        ("segments", SEGMENT, "segment", "patch"),
        ("segments", SEGMENT, "segment", "delete"),
    ],
)
def test_write__stale_if_match__412_naming_the_current_version_nothing_written(
    api, collection, document, entity, method
):
    url = f"/v1/{collection}/{document['key']}"
    assert api.post(f"/v1/{collection}", document, format="json").status_code == 201
    assert api.patch(url, {"description": "v2"}, format="json").status_code == 200
    kwargs = {"data": {"description": "v3"}, "format": "json"} if method == "patch" else {}
    response = getattr(api, method)(url, HTTP_IF_MATCH='"1"', **kwargs)
    assert response.status_code == 412
    assert response.json()["error"] == {
        "code": "precondition_failed",
        "message": f"The {entity} is at version 2, not 1; reload it and retry.",
        "details": {"current_version": 2},
    }
    current = api.get(url).json()
    assert (current["version"], current["description"], current.get("archived_at")) == (2, "v2", None)


@pytest.mark.parametrize("model", [Flag, Segment])
def test_bulk_write__refused__versions_and_signals_cannot_be_skipped(tenant, model):
    with pytest.raises(BulkWriteRefused):
        model.objects.for_tenant(tenant).update(key="x")
    with pytest.raises(BulkWriteRefused):
        model.objects.for_tenant(tenant).delete()
