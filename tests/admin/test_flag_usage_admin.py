"""The flag admin's usage (issue 15, item 3): Last evaluated and a lifecycle/stale badge on the list, a
Stale filter, and on the flag page the served variants over 30 days with the share per reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from flags.models import Flag
from tests.admin.conftest import signed_in
from tests.admin.test_flag_admin import form_data
from tests.factories import make_flag
from usage.services import Count, hour_of, usage_record

pytestmark = pytest.mark.django_db

TWO = {
    "state": "on",
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "off_variant": "off",
    "default": {"variant": "on"},
}


def seed(tenant: Any) -> None:
    make_flag(tenant, "served", **TWO)
    make_flag(tenant, "forgotten")
    Flag._base_manager.filter(tenant=tenant, key="forgotten").update(
        created_at=timezone.now() - timedelta(days=45)
    )
    now = hour_of(timezone.now())
    usage_record(
        tenant_id=tenant.pk,
        batch_id="b1",
        counts=[
            Count("served", "on", "DEFAULT", now, 30, now),
            Count("served", "off", "OFF", now - timedelta(days=3), 10, now - timedelta(days=3)),
        ],
    )


def test_flag_list__last_evaluated_and_stale_badge(editor, tenant):
    seed(tenant)
    page = signed_in(editor).get("/admin/flags/flag/").content.decode()
    assert "Last evaluated" in page
    assert "stale: never evaluated" in page
    assert page.count("flagsvc-life-stale") == 1
    assert "never" in page


def test_flag_list__stale_filter(editor, tenant, other_tenant):
    seed(tenant)
    client = signed_in(editor)
    stale = client.get("/admin/flags/flag/?stale=yes").content.decode()
    assert "forgotten" in stale and "/served/" not in stale and ">served<" not in stale
    fresh = client.get("/admin/flags/flag/?stale=no").content.decode()
    assert ">served<" in fresh and ">forgotten<" not in fresh


def test_flag_page__served_variants_chart_and_reason_share(editor, tenant):
    seed(tenant)
    flag = Flag.all_tenants.get(tenant=tenant, key="served")
    page = signed_in(editor).get(f"/admin/flags/flag/{flag.pk}/change/").content.decode()
    assert "<svg" in page and page.count("<rect") == 2
    assert "Served variants per day" in page
    assert "default 75%" in page and "flag off 25%" in page
    assert "40 in 7 days" in page


def test_flag_form__saves_lifecycle_and_remove_after(editor, tenant):
    make_flag(tenant, "checkout", **TWO)
    flag = Flag.all_tenants.get(tenant=tenant, key="checkout")
    data = form_data(flag, lifecycle="permanent", remove_after="2027-05-01")
    response = signed_in(editor).post(f"/admin/flags/flag/{flag.pk}/change/", data)
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.lifecycle, str(flag.remove_after)) == ("permanent", "2027-05-01")
