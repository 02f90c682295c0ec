"""`manage.py flag_report` (issue 15, item 2): each stale flag with the reason, since when, the last
evaluation and the clean-up in words."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from flags.models import Flag
from tests.factories import make_flag
from usage.services import Count, hour_of, usage_record

pytestmark = pytest.mark.django_db

TWO = {
    "state": "on",
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "off_variant": "off",
    "default": {"variant": "on"},
}


def report(*args: str) -> str:
    out = StringIO()
    call_command("flag_report", *args, stdout=out)
    return out.getvalue()


def setup_flags(tenant: Any) -> None:
    make_flag(tenant, "rollout-done", **TWO)
    make_flag(tenant, "forgotten")
    make_flag(tenant, "busy", **TWO)
    Flag._base_manager.filter(tenant=tenant).update(created_at=timezone.now() - timedelta(days=60))
    now = hour_of(timezone.now())
    counts = [
        Count("rollout-done", "on", "DEFAULT", now - timedelta(days=40), 5, now - timedelta(days=40)),
        Count("rollout-done", "on", "DEFAULT", now, 5, now),
        Count("busy", "on", "DEFAULT", now, 5, now),
        Count("busy", "off", "DEFAULT", now, 5, now),
    ]
    usage_record(tenant_id=tenant.pk, batch_id="b1", counts=counts)


def test_flag_report__stale_json_has_reason_since_last_and_clean_up(tenant, other_tenant):
    setup_flags(tenant)
    make_flag(other_tenant, "theirs")
    Flag._base_manager.filter(tenant=other_tenant).update(created_at=timezone.now() - timedelta(days=60))

    document = json.loads(report("--tenant", tenant.slug, "--stale", "--json"))

    by_key = {row["key"]: row for row in document["flags"]}
    assert sorted(by_key) == ["forgotten", "rollout-done"]
    assert by_key["forgotten"]["stale"]["reason"] == "never_evaluated"
    assert by_key["forgotten"]["last_evaluated_at"] is None
    done = by_key["rollout-done"]
    assert done["stale"]["reason"] == "single_variant"
    assert done["last_evaluated_at"] is not None
    assert "serves `on` to everyone since" in done["clean_up"]
    assert "keep the `on` code path" in done["clean_up"]


def test_flag_report__text_names_each_stale_flag_and_what_to_do(tenant):
    setup_flags(tenant)
    text = report("--tenant", tenant.slug, "--stale")
    assert "forgotten: never_evaluated since" in text
    assert "rollout-done: single_variant since" in text
    assert "busy" not in text
    assert "busy: not stale" in report("--tenant", tenant.slug)


def test_flag_report__unknown_tenant_is_an_error(db):
    with pytest.raises(CommandError):
        report("--tenant", "nope", "--stale")
