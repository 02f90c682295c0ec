"""The safe-change gates together (issue 14): the kill switch passes the four-eyes gate but not audit,
and a change request carries every part of the flag it changes, the kill category included."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from flags.models import ChangeRequest, Flag
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

REASON = {"HTTP_X_CHANGE_REASON": "incident 42"}


def test_kill_switch__turns_a_protected_flag_off_without_a_change_request_and_audits_it(api, tenant):
    make_flag(tenant, "checkout", state="on", protected=True, kill_category="payments")

    engaged = api.post("/v1/killswitch/payments", **REASON)

    assert engaged.status_code == 201, engaged.content
    flag = Flag.objects.for_tenant(tenant).get(key="checkout")
    assert flag.state == "off" and flag.protected
    assert ChangeRequest.objects.for_tenant(tenant).count() == 0
    kill = AuditEntry.objects.for_tenant(tenant).get(entity="flag", entity_key="checkout", action="kill")
    assert kill.reason == "incident 42"

    released = api.delete("/v1/killswitch/payments", **REASON)

    assert released.status_code == 200
    assert Flag.objects.for_tenant(tenant).get(key="checkout").state == "on"
    assert ChangeRequest.objects.for_tenant(tenant).count() == 0


def test_change_request__applied__keeps_and_changes_the_kill_category_as_proposed(
    make_api: Any, tenant
) -> None:
    make_flag(tenant, "checkout", state="off", protected=True, kill_category="payments")
    author = make_api(tenant, ("flags:read", "flags:write"))
    reviewer = make_api(tenant, ("flags:read", "flags:write", "flags:approve"))

    opened = author.patch("/v1/flags/checkout", {"state": "on"}, format="json")
    assert opened.status_code == 202, opened.content
    assert opened.json()["proposed"]["kill_category"] == "payments"
    request_id = opened.json()["id"]
    assert reviewer.post(f"/v1/change-requests/{request_id}/approve").status_code == 200
    applied = author.post(f"/v1/change-requests/{request_id}/apply")

    assert applied.status_code == 200, applied.content
    flag = Flag.objects.for_tenant(tenant).get(key="checkout")
    assert (flag.state, flag.kill_category) == ("on", "payments"), "a full replace must not drop it"

    moved = author.patch("/v1/flags/checkout", {"kill_category": "search"}, format="json")
    assert moved.status_code == 202
    assert reviewer.post(f"/v1/change-requests/{moved.json()['id']}/approve").status_code == 200
    assert author.post(f"/v1/change-requests/{moved.json()['id']}/apply").status_code == 200
    assert Flag.objects.for_tenant(tenant).get(key="checkout").kill_category == "search"
