"""The ruleset is never broken by a write: the refusals of the ruleset check (flags/integrity.py).

Each refusal is asserted exactly (status, code, details) and leaves nothing stored: no version, no
FlagVersion row, no audit entry, no ruleset version bump. The concurrent races are in
test_ruleset_races_postgres.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Count

from audit.models import AuditEntry
from flags.models import Flag, FlagVersion
from segments.models import Segment
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

COLOURS = [
    {"key": "red", "value": "red", "weight": 1},
    {"key": "blue", "value": "blue", "weight": 1},
]


def needs(key: str, *variants: str) -> list[dict[str, Any]]:
    return [{"flag": key, "variants": list(variants or ["on"])}]


def stored_state(tenant: Tenant) -> dict[str, Any]:
    """Everything a write leaves behind; a refused write must leave all of it as it was."""
    flags = Flag.objects.for_tenant(tenant).order_by("key")
    return {
        "flags": [(f.key, f.version, f.archived_at, f.variants, f.prerequisites) for f in flags],
        "segments": sorted(Segment.objects.for_tenant(tenant).values_list("key", "version")),
        "flag_versions": dict(
            FlagVersion.objects.for_tenant(tenant).values_list("flag__key").annotate(n=Count("id"))
        ),
        "audit_entries": AuditEntry.objects.for_tenant(tenant).count(),
        "ruleset_version": Tenant.objects.get(pk=tenant.pk).ruleset_version,
    }


def legacy_row(tenant: Tenant, key: str, **fields: Any) -> None:
    """Store a flag as a row from before the ruleset check could be: saved past the write services."""
    flag = Flag.objects.for_tenant(tenant).get(key=key)
    for name, value in fields.items():
        setattr(flag, name, value)
    flag.save()


def error_of(response: Any) -> dict[str, Any]:
    return response.json()["error"]


def test_archive__flag_live_flags_require__409_conflict_naming_the_dependants(api, tenant):
    api.post("/v1/flags", {"key": "payments", "state": "on"}, format="json")
    api.post("/v1/flags", {"key": "checkout", "prerequisites": needs("payments")}, format="json")
    api.post("/v1/flags", {"key": "banner", "prerequisites": needs("payments", "on", "off")}, format="json")
    before = stored_state(tenant)

    response = api.delete("/v1/flags/payments")

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["message"] == (
        "Flag 'payments' is a prerequisite of 2 live flag(s): banner, checkout. "
        "Change those flags first; nothing was changed."
    )
    message = "unknown or archived flag 'payments': a prerequisite must be a live flag"
    assert error["details"] == {
        "flags": ["banner", "checkout"],
        "problems": [
            {"flag": "banner", "field": "prerequisites[0].flag", "message": message},
            {"flag": "checkout", "field": "prerequisites[0].flag", "message": message},
        ],
    }
    assert stored_state(tenant) == before
    assert api.get("/v1/flags/payments").status_code == 200


def test_archive__after_the_dependants_are_archived__204(api, tenant):
    api.post("/v1/flags", {"key": "payments"}, format="json")
    api.post("/v1/flags", {"key": "checkout", "prerequisites": needs("payments")}, format="json")
    assert api.delete("/v1/flags/checkout").status_code == 204
    assert api.delete("/v1/flags/payments").status_code == 204


def test_update__removes_a_variant_a_dependant_requires__409_conflict(api, tenant):
    api.post(
        "/v1/flags",
        {"key": "colour", "type": "string", "variants": COLOURS, "off_variant": "red"},
        format="json",
    )
    api.post("/v1/flags", {"key": "sale", "prerequisites": needs("colour", "blue")}, format="json")
    before = stored_state(tenant)

    response = api.patch("/v1/flags/colour", {"variants": COLOURS[:1]}, format="json")

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["message"] == (
        "Flag 'colour' would lose a variant that 1 live flag(s) require: sale. "
        "Change those flags first; nothing was changed."
    )
    assert error["details"] == {
        "flags": ["sale"],
        "problems": [
            {
                "flag": "sale",
                "field": "prerequisites[0].variants[0]",
                "message": "flag 'colour' has no variant 'blue'",
            }
        ],
    }
    assert stored_state(tenant) == before


def test_rollback__to_a_version_without_a_variant_a_dependant_requires__409_conflict(api, tenant):
    api.post(
        "/v1/flags",
        {"key": "colour", "type": "string", "variants": COLOURS[:1], "off_variant": "red"},
        format="json",
    )
    api.patch("/v1/flags/colour", {"variants": COLOURS}, format="json")
    api.post("/v1/flags", {"key": "sale", "prerequisites": needs("colour", "blue")}, format="json")
    before = stored_state(tenant)

    response = api.post("/v1/flags/colour/rollback", {"version": 1}, format="json")

    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["details"]["flags"]) == ("conflict", ["sale"])
    assert stored_state(tenant) == before


@pytest.mark.parametrize("method", ["post", "patch"])
def test_flag_naming_itself_as_prerequisite__409_prerequisite_cycle_of_one(api, tenant, method):
    api.post("/v1/flags", {"key": "other"}, format="json")
    if method == "patch":
        api.post("/v1/flags", {"key": "loop"}, format="json")
    before = stored_state(tenant)
    body = {"key": "loop", "prerequisites": needs("loop")}

    response = (
        api.post("/v1/flags", body, format="json")
        if method == "post"
        else api.patch("/v1/flags/loop", {"prerequisites": needs("loop")}, format="json")
    )

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "prerequisite_cycle"
    assert error["details"] == {"cycle": ["loop", "loop"]}
    assert error["message"] == "The prerequisites would form a cycle: loop -> loop"
    assert stored_state(tenant) == before


def test_segment_delete__used_by_a_live_flag__409_conflict_nothing_deleted(api, tenant):
    api.post("/v1/segments", {"key": "beta", "included": ["u-1"]}, format="json")
    rule = {"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}
    api.post("/v1/flags", {"key": "checkout", "rules": [rule]}, format="json")
    before = stored_state(tenant)

    response = api.delete("/v1/segments/beta")

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["message"] == (
        "Segment 'beta' is used by 1 live flag(s): checkout. Change those flags first; nothing was changed."
    )
    assert error["details"] == {
        "flags": ["checkout"],
        "problems": [
            {
                "flag": "checkout",
                "field": "rules[0].when.segment",
                "message": "unknown segment 'beta': create it first or fix the key",
            }
        ],
    }
    assert stored_state(tenant) == before


def test_restore__prerequisite_archived_meanwhile__422_and_stays_archived(api, tenant):
    api.post("/v1/flags", {"key": "payments"}, format="json")
    api.post("/v1/flags", {"key": "checkout", "prerequisites": needs("payments")}, format="json")
    api.delete("/v1/flags/checkout")
    api.delete("/v1/flags/payments")
    before = stored_state(tenant)

    response = api.post("/v1/flags/checkout/restore")

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert error["details"] == {
        "fields": {
            "prerequisites[0].flag": [
                "unknown or archived flag 'payments': a prerequisite must be a live flag"
            ]
        }
    }
    assert stored_state(tenant) == before


def test_restore__would_close_a_cycle__409_prerequisite_cycle_and_stays_archived(api, tenant):
    """Only rows written before the ruleset check can get here: a live flag cannot name an archived
    one. The restore is refused; breaking the cycle on the live flag makes it possible again."""
    api.post("/v1/flags", {"key": "a"}, format="json")
    api.post("/v1/flags", {"key": "b", "prerequisites": needs("a")}, format="json")
    api.delete("/v1/flags/b")
    legacy_row(tenant, "a", prerequisites=needs("b"))
    before = stored_state(tenant)

    response = api.post("/v1/flags/b/restore")

    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["details"]) == ("prerequisite_cycle", {"cycle": ["b", "a", "b"]})
    assert stored_state(tenant) == before


def test_write__unrelated_flag_broken_before_the_check__not_blocked(api, tenant):
    """A live flag stored broken before this check (a legacy row) must not lock the tenant out."""
    api.post("/v1/flags", {"key": "old"}, format="json")
    rule = {"id": "r", "when": {"segment": "gone"}, "serve": {"variant": "on"}}
    legacy_row(tenant, "old", rules=[rule])

    assert api.post("/v1/flags", {"key": "new"}, format="json").status_code == 201
    assert api.post("/v1/segments", {"key": "beta"}, format="json").status_code == 201
    assert api.delete("/v1/segments/beta").status_code == 204
    assert api.delete("/v1/flags/old").status_code == 204
