"""`import_flags` goes through the change-request gate: a protected flag is proposed, never written."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from flags.models import ChangeRequest, Flag
from tenancy.models import Tenant
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def test_import_opens_change_requests_for_protected_flags_applies_the_rest_and_exits_3(
    tenant: Tenant, tmp_path: Path
) -> None:
    make_flag(tenant, "guarded", state="off", protected=True)
    make_flag(tenant, "plain", state="off")
    document = {
        "format_version": 1,
        "segments": [],
        "flags": [{"key": "guarded", "state": "on"}, {"key": "plain", "state": "on"}],
    }
    path = tmp_path / "ruleset.json"
    path.write_text(json.dumps(document))
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_flags", "--tenant", tenant.slug, str(path), stdout=out)
    [cr] = ChangeRequest.objects.for_tenant(tenant)
    assert caught.value.returncode == 3
    assert f"#{cr.pk} (guarded)" in str(caught.value)
    assert f"change request #{cr.pk} opened" in out.getvalue()
    assert (cr.author, cr.proposed["state"], cr.status) == ("system:import_flags", "on", "pending")
    flags = {f.key: f for f in Flag.objects.for_tenant(tenant)}
    assert (flags["guarded"].state, flags["guarded"].version) == ("off", 1)
    assert flags["plain"].state == "on"


def test_import_prune_of_a_protected_flag_proposes_the_archive(tenant: Tenant, tmp_path: Path) -> None:
    make_flag(tenant, "guarded", protected=True)
    path = tmp_path / "ruleset.json"
    path.write_text(json.dumps({"format_version": 1, "segments": [], "flags": []}))
    with pytest.raises(CommandError):
        call_command("import_flags", "--tenant", tenant.slug, str(path), "--prune", stdout=StringIO())
    [cr] = ChangeRequest.objects.for_tenant(tenant)
    assert cr.kind == "archive"
    assert Flag.objects.for_tenant(tenant).get(key="guarded").archived_at is None
