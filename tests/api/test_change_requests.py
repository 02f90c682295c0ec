"""Four eyes (api.md, Safe change): every API path to a protected flag goes through the change-request gate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry, ChangeEvent
from flags.approvals import ApprovalRequired, applying
from flags.models import ChangeRequest, Flag
from flags.services import flag_archive, flag_update
from tenancy.models import Tenant
from tests.factories import make_flag
from tests.receiver import running_receiver
from webhooks.worker import Worker

pytestmark = pytest.mark.django_db

WRITER = ("flags:read", "flags:write", "audit:read", "events:read")
REVIEWER = ("flags:read", "flags:write", "flags:approve")


@pytest.fixture
def protected(tenant: Tenant) -> Flag:
    return make_flag(tenant, "checkout", state="off", protected=True, tags=["pay"])


@pytest.fixture
def author(make_api: Any, tenant: Tenant) -> APIClient:
    return make_api(tenant, (*WRITER, "flags:approve"))


@pytest.fixture
def reviewer(make_api: Any, tenant: Tenant) -> APIClient:
    return make_api(tenant, REVIEWER)


def _stored(tenant: Tenant, key: str = "checkout") -> Flag:
    return Flag.objects.for_tenant(tenant).get(key=key)


def _open(author: APIClient) -> dict[str, Any]:
    response = author.patch("/v1/flags/checkout", {"state": "on"}, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())


def test_protected_is_part_of_the_flag_document(api: APIClient) -> None:
    created = api.post("/v1/flags", {"key": "p", "protected": True}, format="json")
    assert created.status_code == 201
    assert created.json()["protected"] is True
    assert api.get("/v1/flags/p").json()["protected"] is True
    assert api.post("/v1/flags", {"key": "q"}, format="json").json()["protected"] is False


def test_protected_must_be_a_boolean(api: APIClient) -> None:
    response = api.post("/v1/flags", {"key": "p", "protected": "yes"}, format="json")
    assert response.status_code == 422
    assert "protected" in response.json()["error"]["details"]["fields"]


def test_protecting_an_unprotected_flag_is_direct(api: APIClient, tenant: Tenant) -> None:
    make_flag(tenant, "plain")
    response = api.patch("/v1/flags/plain", {"protected": True}, format="json")
    assert response.status_code == 200
    assert response.json()["protected"] is True and response.json()["version"] == 2


def test_patch_of_a_protected_flag_answers_202_and_writes_nothing(
    author: APIClient, protected: Flag, tenant: Tenant
) -> None:
    body = _open(author)
    assert body["status"] == "pending"
    assert body["flag_key"] == "checkout"
    assert body["base_version"] == 1
    assert body["proposed"]["state"] == "on"
    assert body["diff"] == {"state": {"from": "off", "to": "on"}}
    assert body["author"].startswith("client:")
    assert body["approvals"] == []
    assert _stored(tenant).state == "off" and _stored(tenant).version == 1
    assert not AuditEntry.objects.for_tenant(tenant).filter(entity="flag", action="update").exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "kind"),
    [
        ("put", "/v1/flags/checkout", {"key": "checkout", "state": "on"}, "update"),
        ("patch", "/v1/flags/checkout", {"state": "on"}, "update"),
        ("patch", "/v1/flags/checkout", {"protected": False}, "update"),
        ("delete", "/v1/flags/checkout", None, "archive"),
        ("post", "/v1/flags/checkout/rollback", {"version": 1}, "rollback"),
    ],
)
def test_every_write_route_opens_a_change_request(
    author: APIClient, protected: Flag, tenant: Tenant, method: str, path: str, body: Any, kind: str
) -> None:
    if kind == "rollback":  # a second version to roll back from, written as an approved request would be
        with applying(protected):
            flag_update(tenant=tenant, key="checkout", data={"state": "on"}, partial=True)
    before = _stored(tenant)
    response = getattr(author, method)(path, body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == kind
    assert response["Location"] == f"/v1/change-requests/{response.json()['id']}"
    after = _stored(tenant)
    assert (after.version, after.state, after.protected, after.archived_at) == (
        before.version,
        before.state,
        True,
        None,
    )


def test_restore_of_a_protected_archived_flag_opens_a_change_request(
    author: APIClient, tenant: Tenant
) -> None:
    flag = make_flag(tenant, "old", protected=True)
    with applying(flag):
        flag_archive(tenant=tenant, key="old")
    response = author.post("/v1/flags/old/restore", format="json")
    assert response.status_code == 202
    assert response.json()["kind"] == "restore"
    assert response.json()["diff"] == {"archived": {"from": True, "to": False}}
    assert _stored(tenant, "old").archived_at is not None


def test_unchanged_write_of_a_protected_flag_opens_nothing(author: APIClient, protected: Flag) -> None:
    response = author.patch("/v1/flags/checkout", {"state": "off"}, format="json")
    assert response.status_code == 200
    assert not ChangeRequest.all_tenants.exists()


def test_same_author_writing_again_updates_their_open_request(author: APIClient, protected: Flag) -> None:
    first = _open(author)
    second = author.patch("/v1/flags/checkout", {"name": "Renamed"}, format="json")
    assert second.status_code == 202
    assert second.json()["id"] == first["id"]
    assert second.json()["proposed"]["name"] == "Renamed"
    assert ChangeRequest.all_tenants.count() == 1


def test_approve_then_apply_writes_a_new_version_audited_as_the_applier(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    approved = reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    approver = approved.json()["approvals"][0]["actor"]
    assert approver != cr["author"]
    applied = author.post(f"/v1/change-requests/{cr['id']}/apply")
    assert applied.status_code == 200, applied.content
    assert applied.json()["status"] == "applied"
    assert applied.json()["applied_version"] == 2
    assert applied.json()["flag"]["state"] == "on"
    flag = _stored(tenant)
    assert (flag.state, flag.version) == ("on", 2)
    update = AuditEntry.objects.for_tenant(tenant).get(entity="flag", action="update")
    assert update.actor == cr["author"] and update.version == 2
    apply_entry = AuditEntry.objects.for_tenant(tenant).get(entity="change_request", action="apply")
    assert apply_entry.actor == cr["author"]
    assert apply_entry.entity_key == cr["id"] and apply_entry.version == 2
    assert apply_entry.after["approvals"][0]["actor"] == approver
    assert apply_entry.after["flag_key"] == "checkout"


def test_change_request_events_are_in_the_outbox(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    author.post(f"/v1/change-requests/{cr['id']}/apply")
    other = author.patch("/v1/flags/checkout", {"state": "off"}, format="json").json()
    reviewer.post(f"/v1/change-requests/{other['id']}/reject")
    polled = author.get("/v1/events?after=0", HTTP_ACCEPT="application/json").json()["events"]
    types = [event["type"] for event in polled if event["entity"] == "change_request"]
    assert types == [
        "change_request.opened",
        "change_request.approved",
        "change_request.applied",
        "change_request.opened",
        "change_request.rejected",
    ]
    assert "flag.updated" in [event["type"] for event in polled]
    assert ChangeEvent.objects.for_tenant(tenant).filter(entity="change_request").count() == 5
    approvals = author.get("/v1/audit?entity=change_request&action=approve").json()["results"]
    assert [(e["entity_key"], e["actor"]) for e in approvals] == [(cr["id"], approvals[0]["actor"])]
    assert approvals[0]["actor"] != cr["author"]


def test_self_approval_is_403(author: APIClient, protected: Flag) -> None:
    cr = _open(author)
    response = author.post(f"/v1/change-requests/{cr['id']}/approve")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "self_approval"
    assert ChangeRequest.all_tenants.get().status == "pending"


def test_approve_without_the_approve_scope_is_403(
    author: APIClient, make_api: Any, tenant: Tenant, protected: Flag
) -> None:
    cr = _open(author)
    writer = make_api(tenant, WRITER)
    response = writer.post(f"/v1/change-requests/{cr['id']}/approve")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_apply_before_approval_is_409(author: APIClient, protected: Flag, tenant: Tenant) -> None:
    cr = _open(author)
    response = author.post(f"/v1/change-requests/{cr['id']}/apply")
    assert response.status_code == 409
    assert _stored(tenant).state == "off"


def test_editing_clears_the_approvals_and_is_validated(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    edited = author.patch(f"/v1/change-requests/{cr['id']}", {"proposed": {"name": "New"}}, format="json")
    assert edited.status_code == 200
    assert edited.json()["status"] == "pending" and edited.json()["approvals"] == []
    assert edited.json()["proposed"]["name"] == "New" and edited.json()["proposed"]["state"] == "on"
    assert author.post(f"/v1/change-requests/{cr['id']}/apply").status_code == 409
    bad = author.patch(f"/v1/change-requests/{cr['id']}", {"proposed": {"state": "maybe"}}, format="json")
    assert bad.status_code == 422
    unknown = author.patch(f"/v1/change-requests/{cr['id']}", {"proposed": {"nope": 1}}, format="json")
    assert unknown.status_code == 422
    key = author.patch(f"/v1/change-requests/{cr['id']}", {"proposed": {"key": "x"}}, format="json")
    assert key.status_code == 422


def test_only_the_author_edits(author: APIClient, reviewer: APIClient, protected: Flag) -> None:
    cr = _open(author)
    response = reviewer.patch(f"/v1/change-requests/{cr['id']}", {"proposed": {"name": "X"}}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_author"


def test_apply_with_a_moved_base_is_412_with_the_current_version(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    # Another approved request moves the flag first.
    other = reviewer.patch("/v1/flags/checkout", {"name": "Moved"}, format="json").json()
    author.post(f"/v1/change-requests/{other['id']}/approve")
    assert author.post(f"/v1/change-requests/{other['id']}/apply").status_code == 200
    response = author.post(f"/v1/change-requests/{cr['id']}/apply")
    assert response.status_code == 412
    assert response.json()["error"]["details"]["current_version"] == 2
    assert _stored(tenant).state == "off"


def test_rejected_requests_cannot_be_approved_or_applied(
    author: APIClient, reviewer: APIClient, protected: Flag
) -> None:
    cr = _open(author)
    assert reviewer.post(f"/v1/change-requests/{cr['id']}/reject").json()["status"] == "rejected"
    assert reviewer.post(f"/v1/change-requests/{cr['id']}/approve").status_code == 409
    assert author.post(f"/v1/change-requests/{cr['id']}/apply").status_code == 409


def test_the_author_may_withdraw_but_a_writer_may_not_reject_others(
    author: APIClient, make_api: Any, tenant: Tenant, protected: Flag
) -> None:
    cr = _open(author)
    writer = make_api(tenant, WRITER)
    refused = writer.post(f"/v1/change-requests/{cr['id']}/reject")
    assert refused.status_code == 403
    assert author.post(f"/v1/change-requests/{cr['id']}/reject").status_code == 200


def test_archive_applied_through_a_request(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = author.delete("/v1/flags/checkout").json()
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    assert author.post(f"/v1/change-requests/{cr['id']}/apply").status_code == 200
    assert _stored(tenant).archived_at is not None


def test_unprotecting_needs_approval_and_then_writes_directly(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = author.patch("/v1/flags/checkout", {"protected": False}, format="json").json()
    assert cr["diff"] == {"protected": {"from": True, "to": False}}
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    author.post(f"/v1/change-requests/{cr['id']}/apply")
    assert _stored(tenant).protected is False
    assert author.patch("/v1/flags/checkout", {"state": "on"}, format="json").status_code == 200


def test_list_and_filters(author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant) -> None:
    make_flag(tenant, "other", protected=True)
    _open(author)
    reviewer.patch("/v1/flags/other", {"state": "on"}, format="json")
    assert author.get("/v1/change-requests").json()["count"] == 2
    assert author.get("/v1/change-requests?flag=other").json()["count"] == 1
    assert author.get("/v1/change-requests?status=pending").json()["count"] == 2
    assert author.get("/v1/change-requests?status=applied").json()["count"] == 0
    assert author.get("/v1/change-requests?status=bogus").status_code == 422
    assert author.get("/v1/change-requests?flag=" + "x" * 500).status_code == 422


def test_another_tenants_request_is_404(author: APIClient, other_api: APIClient, protected: Flag) -> None:
    cr = _open(author)
    for method, path in [
        ("get", f"/v1/change-requests/{cr['id']}"),
        ("patch", f"/v1/change-requests/{cr['id']}"),
        ("post", f"/v1/change-requests/{cr['id']}/approve"),
        ("post", f"/v1/change-requests/{cr['id']}/reject"),
        ("post", f"/v1/change-requests/{cr['id']}/apply"),
    ]:
        response = getattr(other_api, method)(path, {"proposed": {}}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert other_api.get("/v1/change-requests").json()["count"] == 0


def test_hostile_ids_and_bodies_get_the_error_shape(author: APIClient, protected: Flag) -> None:
    cr = _open(author)
    assert author.get("/v1/change-requests/" + "9" * 30).status_code == 404
    assert author.get("/v1/change-requests/999999").status_code == 404
    for body in ([], {"proposed": []}, {"proposed": "x"}, {"proposed": {"rules": "x" * 10}}):
        response = author.patch(f"/v1/change-requests/{cr['id']}", body, format="json")
        assert response.status_code == 422, body
        assert "error" in response.json()
    huge = {"proposed": {"description": "x" * 200_000}}
    response = author.patch(f"/v1/change-requests/{cr['id']}", huge, format="json")
    assert response.status_code in (413, 422)


def test_a_direct_service_call_as_the_scheduler_goes_through_the_gate(
    protected: Flag, tenant: Tenant
) -> None:
    with pytest.raises(ApprovalRequired) as caught:
        flag_update(tenant=tenant, key="checkout", data={"state": "on"}, actor="system:rollout", partial=True)
    cr = caught.value.change_request
    assert cr.author == "system:rollout" and cr.status == "pending"
    assert ChangeRequest.objects.for_tenant(tenant).filter(pk=cr.pk).exists()
    assert _stored(tenant).state == "off"


def test_openapi_documents_the_202_and_the_change_request_routes(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    for method, path in [
        ("put", "/v1/flags/{key}"),
        ("patch", "/v1/flags/{key}"),
        ("delete", "/v1/flags/{key}"),
        ("post", "/v1/flags/{key}/restore"),
        ("post", "/v1/flags/{key}/rollback"),
    ]:
        assert "202" in schema["paths"][path][method]["responses"], (method, path)
    assert {
        "/v1/change-requests",
        "/v1/change-requests/{cr_id}",
        "/v1/change-requests/{cr_id}/approve",
        "/v1/change-requests/{cr_id}/reject",
        "/v1/change-requests/{cr_id}/apply",
    } <= set(schema["paths"])


def test_a_change_request_webhook_is_delivered_like_every_event(
    author: APIClient, reviewer: APIClient, make_api: Any, protected: Flag, tenant: Tenant, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    admin_api = make_api(tenant, ("admin",))
    with running_receiver([200, 200]) as receiver:
        hook = admin_api.post(
            "/v1/webhooks", {"url": receiver.url, "events": ["change_request.*"]}, format="json"
        )
        assert hook.status_code == 201
        cr = _open(author)
        reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
        Worker().run_once()
        bodies = [json.loads(r.body) for r in receiver.requests]
    assert [(b["type"], b["key"], b["entity"]) for b in bodies] == [
        ("change_request.opened", cr["id"], "change_request"),
        ("change_request.approved", cr["id"], "change_request"),
    ]


def test_the_same_write_again_keeps_the_request_and_its_approval(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    again = author.patch("/v1/flags/checkout", {"state": "on"}, format="json")
    assert again.status_code == 202
    assert again.json()["id"] == cr["id"]
    assert again.json()["status"] == "approved" and len(again.json()["approvals"]) == 1
    assert AuditEntry.objects.for_tenant(tenant).filter(entity="change_request", action="edit").count() == 0


def test_a_different_write_by_the_same_author_clears_the_approval(
    author: APIClient, reviewer: APIClient, protected: Flag
) -> None:
    cr = _open(author)
    reviewer.post(f"/v1/change-requests/{cr['id']}/approve")
    changed = author.patch("/v1/flags/checkout", {"state": "on", "name": "Other"}, format="json").json()
    assert changed["id"] == cr["id"]
    assert (changed["status"], changed["approvals"]) == ("pending", [])


def test_reject__change_reason_kept_on_the_audit_entry(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    response = reviewer.post(
        f"/v1/change-requests/{cr['id']}/reject", HTTP_X_CHANGE_REASON="breaks the EU checkout"
    )
    assert response.status_code == 200
    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="change_request").latest("seq")
    assert (entry.action, entry.reason) == ("reject", "breaks the EU checkout")


def test_reject__reason_too_long__422_nothing_rejected(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    cr = _open(author)
    response = reviewer.post(f"/v1/change-requests/{cr['id']}/reject", HTTP_X_CHANGE_REASON="x" * 600)
    assert response.status_code == 422
    assert ChangeRequest.objects.for_tenant(tenant).get(pk=int(cr["id"])).status == "pending"


def test_reject__tenant_requires_reasons__422_naming_reason_without_one(
    author: APIClient, reviewer: APIClient, protected: Flag, tenant: Tenant
) -> None:
    from tenancy.services import tenant_update

    cr = _open(author)
    tenant_update(tenant=tenant, require_change_reason=True)
    response = reviewer.post(f"/v1/change-requests/{cr['id']}/reject")
    assert response.status_code == 422
    assert "reason" in response.json()["error"]["details"]["fields"]
    assert ChangeRequest.objects.for_tenant(tenant).get(pk=int(cr["id"])).status == "pending"


def test_reject__reader_without_approve_or_write__403_before_the_reason_is_asked(
    author: APIClient, make_api: Any, tenant: Tenant, protected: Flag
) -> None:
    from tenancy.services import tenant_update

    cr = _open(author)
    tenant_update(tenant=tenant, require_change_reason=True)
    reader = make_api(tenant, ("flags:read",))
    response = reader.post(f"/v1/change-requests/{cr['id']}/reject")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")
