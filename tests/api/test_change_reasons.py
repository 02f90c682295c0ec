"""`X-Change-Reason` on every write (api.md, Safe change: Change reason) and the tenant's policy."""

from __future__ import annotations

import io

import pytest

from audit.models import AuditEntry
from audit.verification import verify_chain
from tenancy.models import Tenant
from tenancy.services import tenant_update

pytestmark = pytest.mark.django_db

WHY = {"HTTP_X_CHANGE_REASON": "ticket FLAG-7: roll out to beta"}


def latest_reason(api) -> str | None:
    return api.get("/v1/audit").json()["results"][0]["reason"]


def require_reasons(tenant: Tenant) -> None:
    tenant_update(tenant=tenant, require_change_reason=True)


@pytest.mark.parametrize(
    "write",
    [
        lambda api: api.post("/v1/flags", {"key": "g"}, format="json", **WHY),
        lambda api: api.patch("/v1/flags/f", {"state": "on"}, format="json", **WHY),
        lambda api: api.put("/v1/flags/f", {"key": "f", "state": "on"}, format="json", **WHY),
        lambda api: api.delete("/v1/flags/f", **WHY),
        lambda api: api.post("/v1/flags/f/rollback", {"version": 1}, format="json", **WHY),
        lambda api: api.post("/v1/segments", {"key": "s2"}, format="json", **WHY),
        lambda api: api.patch("/v1/segments/s", {"description": "d"}, format="json", **WHY),
        lambda api: api.delete("/v1/segments/s", **WHY),
        lambda api: api.post("/v1/webhooks", {"url": "https://example.com/h", "events": ["*"]}, format="json", **WHY),
    ],
    ids=["flag-create", "flag-patch", "flag-put", "flag-archive", "flag-rollback", "segment-create",
         "segment-patch", "segment-delete", "webhook-create"],
)  # fmt: skip
def test_every_write__stores_its_reason_on_the_audit_entry(api, write):
    api.post("/v1/flags", {"key": "f"}, format="json")
    api.patch("/v1/flags/f", {"description": "v2"}, format="json")
    api.post("/v1/segments", {"key": "s"}, format="json")

    response = write(api)

    assert response.status_code in (200, 201, 204), response.content
    assert latest_reason(api) == "ticket FLAG-7: roll out to beta"


def test_restore__stores_its_reason(api):
    api.post("/v1/flags", {"key": "f"}, format="json")
    api.delete("/v1/flags/f")
    api.post("/v1/flags/f/restore", **WHY)
    assert latest_reason(api) == "ticket FLAG-7: roll out to beta"


def test_a_write_without_a_reason__has_reason_null(api):
    api.post("/v1/flags", {"key": "f"}, format="json")
    assert latest_reason(api) is None


def test_reason__is_trimmed_and_utf8_text_survives_the_header(api):
    raw = "  Déploiement — bêta  ".encode().decode("latin-1")  # how WSGI hands a UTF-8 header over
    api.post("/v1/flags", {"key": "f"}, format="json", HTTP_X_CHANGE_REASON=raw)
    assert latest_reason(api) == "Déploiement — bêta"


def test_reason__500_characters_pass_501_are_422_naming_reason(api):
    ok = api.post("/v1/flags", {"key": "f"}, format="json", HTTP_X_CHANGE_REASON="x" * 500)
    assert ok.status_code == 201
    too_long = api.post("/v1/flags", {"key": "g"}, format="json", HTTP_X_CHANGE_REASON="x" * 501)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "validation_error"
    assert "reason" in too_long.json()["error"]["details"]["fields"]
    assert api.get("/v1/flags/g").status_code == 404, "nothing was written"


@pytest.mark.parametrize("bad", ["a\x00b", "line\x1bbreak", "tab\there", "bell\x07"])
def test_reason__control_characters__are_422_naming_reason(api, bad):
    response = api.post("/v1/flags", {"key": "f"}, format="json", HTTP_X_CHANGE_REASON=bad)
    assert response.status_code == 422
    assert "reason" in response.json()["error"]["details"]["fields"]


def test_reason__does_not_leak_into_the_next_request(api):
    api.post("/v1/flags", {"key": "f"}, format="json", **WHY)
    api.patch("/v1/flags/f", {"state": "on"}, format="json")
    assert latest_reason(api) is None


def test_required_by_the_tenant__a_write_without_one_is_422_naming_reason(api, tenant):
    require_reasons(tenant)

    response = api.post("/v1/flags", {"key": "f"}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["details"]["fields"]) == ["reason"]
    assert api.get("/v1/flags/f").status_code == 404
    assert api.post("/v1/flags", {"key": "f"}, format="json", **WHY).status_code == 201


def test_required_by_the_tenant__reads_and_evaluations_need_none(api, tenant):
    api.post("/v1/flags", {"key": "f"}, format="json")
    require_reasons(tenant)
    assert api.get("/v1/flags").status_code == 200
    assert api.post("/v1/evaluate", {"flag_key": "f", "user": {"id": "u"}}, format="json").status_code == 200
    assert api.patch("/v1/flags/f", {"state": "on"}, format="json").status_code == 422


def test_required_by_one_tenant__not_by_another(api, other_api, tenant):
    require_reasons(tenant)
    assert api.post("/v1/flags", {"key": "f"}, format="json").status_code == 422
    assert other_api.post("/v1/flags", {"key": "f"}, format="json").status_code == 201


def test_audit_chain__covers_the_reason(api, tenant):
    """`manage.py verify_audit` detects a reason edited behind the app's back."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tests.unit.test_verify_audit import tamper

    api.post("/v1/flags", {"key": "f"}, format="json")  # written without a reason: verifies as before
    api.patch("/v1/flags/f", {"state": "on"}, format="json", **WHY)
    assert verify_chain(tenant=tenant).ok
    entry = AuditEntry.objects.for_tenant(tenant).order_by("-seq").first()

    tamper("UPDATE audit_auditentry SET reason = %s WHERE id = %s", ["nothing to see", entry.pk])

    report = verify_chain(tenant=tenant)
    assert not report.ok and report.broken.seq == entry.seq
    with pytest.raises(CommandError):
        call_command("verify_audit", "--tenant", tenant.slug, stdout=io.StringIO())


def test_audit_chain__a_reason_added_to_an_entry_without_one__is_detected(api, tenant):
    from tests.unit.test_verify_audit import tamper

    api.post("/v1/flags", {"key": "f"}, format="json")
    entry = AuditEntry.objects.for_tenant(tenant).get()
    tamper("UPDATE audit_auditentry SET reason = %s WHERE id = %s", ["approved by CTO", entry.pk])
    assert not verify_chain(tenant=tenant).ok


def test_audit_chain__entries_without_a_reason_hash_as_before_it_existed(tenant):
    """Entries written before `reason` existed (none of them has one) keep verifying."""
    from audit.chain import entry_content

    entry = AuditEntry(tenant_id=tenant.pk, seq=1, ts=tenant.created_at, actor="a", entity="flag",
                       entity_key="f", action="create", version=1, before=None, after={}, diff={},
                       request_id=None, reason="")  # fmt: skip
    assert "reason" not in entry_content(entry)
    entry.reason = "why"
    assert entry_content(entry)["reason"] == "why"


def test_tenant_policy_change__is_audited(tenant):
    tenant_update(tenant=tenant, require_change_reason=True)
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="tenant").get()
    assert entry.diff["require_change_reason"] == {"from": False, "to": True}


def test_evaluate__ignores_the_header_it_has_no_change_to_explain(api):
    api.post("/v1/flags", {"key": "f"}, format="json")
    response = api.post(
        "/v1/evaluate", {"flag_key": "f", "user": {"id": "u"}}, format="json", HTTP_X_CHANGE_REASON="x" * 600
    )
    assert response.status_code == 200
