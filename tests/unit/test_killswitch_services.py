"""flags.killswitch: engage and release as services (ADR kill switches)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models.signals import pre_save

from audit.models import AuditEntry, ChangeEvent
from flags import services
from flags.killswitch import engaged_switches, killswitch_engage, killswitch_release
from flags.models import Flag, KillSwitch
from kernel.context import acting_as
from kernel.errors import Invalid
from tenancy.services import tenant_update
from tests.factories import make_flag

pytestmark = pytest.mark.django_db


def states(tenant) -> dict[str, str]:
    return dict(Flag.objects.for_tenant(tenant).values_list("key", "state"))


def test_engage__if_one_flag_fails__nothing_changes(tenant):
    make_flag(tenant, "a", state="on", kill_category="pay")
    make_flag(tenant, "b", state="on", kill_category="pay")
    entries = AuditEntry.objects.for_tenant(tenant).count()

    def refuse_b(sender, instance, **kwargs):
        if sender is Flag and instance.key == "b" and instance.state == "off":
            raise RuntimeError("disk full")

    pre_save.connect(refuse_b, sender=Flag, dispatch_uid="test_refuse_b")
    try:
        with pytest.raises(RuntimeError):
            killswitch_engage(tenant=tenant, category="pay", actor="user:ops", reason="incident")
    finally:
        pre_save.disconnect(dispatch_uid="test_refuse_b", sender=Flag)

    assert states(tenant) == {"a": "on", "b": "on"}, "flag a's kill rolled back with b's failure"
    assert AuditEntry.objects.for_tenant(tenant).count() == entries
    assert not KillSwitch.objects.for_tenant(tenant).exists()


def test_engage_and_release__do_not_go_through_the_public_flag_update(tenant, monkeypatch):
    """A gate in flag_update (approvals, freezes) must not stop a kill switch (api.md, Safe change)."""
    make_flag(tenant, "a", state="on", kill_category="pay")

    def gated(**kwargs):
        raise AssertionError("the kill switch went through flag_update")

    monkeypatch.setattr(services, "flag_update", gated)
    killswitch_engage(tenant=tenant, category="pay", actor="user:ops", reason="incident")
    assert states(tenant) == {"a": "off"}
    killswitch_release(tenant=tenant, category="pay", actor="user:ops")
    assert states(tenant) == {"a": "on"}


def test_engage__reason_from_the_context_or_the_argument(tenant):
    make_flag(tenant, "a", state="on", kill_category="pay")
    with acting_as("client:x", reason="from the header"):
        killswitch_engage(tenant=tenant, category="pay")
    assert engaged_switches(tenant=tenant)[0]["reason"] == "from the header"
    assert engaged_switches(tenant=tenant)[0]["by"] == "client:x"


def test_engage__without_any_reason__is_refused(tenant):
    make_flag(tenant, "a", state="on", kill_category="pay")
    with pytest.raises(Invalid) as refused:
        killswitch_engage(tenant=tenant, category="pay", actor="user:ops")
    assert "reason" in refused.value.details["fields"]


def test_engage__writes_one_event_and_one_entry_per_flag(tenant):
    for key in ("a", "b", "c"):
        make_flag(tenant, key, state="on", kill_category="pay")
    events = ChangeEvent.objects.for_tenant(tenant).count()

    killswitch_engage(tenant=tenant, category="pay", actor="user:ops", reason="incident")

    new_events = ChangeEvent.objects.for_tenant(tenant).order_by("pk")[events:]
    assert [(e.entity, e.action) for e in new_events] == [("killswitch", "engage")]
    kills = AuditEntry.objects.for_tenant(tenant).filter(action="kill")
    assert sorted(kills.values_list("entity_key", flat=True)) == ["a", "b", "c"]
    assert set(kills.values_list("reason", "actor")) == {("incident", "user:ops")}


def test_import_flags__reason_is_stored_and_required_by_policy(tenant, tmp_path):
    make_flag(tenant, "a", kill_category="pay")
    out = io.StringIO()
    call_command("export_flags", "--tenant", tenant.slug, stdout=out)
    document = json.loads(out.getvalue())
    document["flags"][0]["description"] = "changed by import"
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(document))

    tenant_update(tenant=tenant, require_change_reason=True)
    with pytest.raises(CommandError, match="reason"):
        call_command("import_flags", "--tenant", tenant.slug, str(path), stdout=io.StringIO())
    call_command(
        "import_flags", "--tenant", tenant.slug, str(path), "--reason", "sync from git", stdout=io.StringIO()
    )

    entry = AuditEntry.objects.for_tenant(tenant).filter(entity="flag").order_by("-seq").first()
    assert entry.reason == "sync from git" and entry.actor == "system:import_flags"
    flag = Flag.objects.for_tenant(tenant).get(key="a")
    assert flag.description == "changed by import"
    assert flag.kill_category == "pay", "an import keeps the category its file does not carry"
