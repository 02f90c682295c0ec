"""Config as code: `export_flags` / `import_flags` and the service behind them (flags/config_io)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from flags.config_io import ImportRejected, document_loads, ruleset_export, ruleset_import
from flags.models import Flag, FlagVersion
from flags.selectors import flag_get
from flags.services import flag_archive
from segments.selectors import segment_get
from tenancy.models import Tenant
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db

SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "beta-testers",
        "description": "Opted into early features",
        "included": ["u-1", "u-2"],
        "excluded": ["u-9"],
        "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
    },
    {"key": "internal", "when": {"attr": "email", "op": "ends_with", "value": "@acme.test"}},
]
FLAGS: list[dict[str, Any]] = [
    {
        "key": "new-payments",
        "state": "on",
        "rules": [{"id": "staff", "when": {"segment": "internal"}, "serve": {"variant": "on"}}],
        "default": {"variant": "on"},
        "tags": ["team:payments"],
    },
    {
        "key": "checkout",
        "name": "Checkout redesign",
        "state": "on",
        "variants": [
            {"key": "on", "value": True, "weight": 20},
            {"key": "off", "value": False, "weight": 80},
        ],
        "rules": [{"id": "beta", "when": {"segment": "beta-testers"}, "serve": {"variant": "on"}}],
        "prerequisites": [{"flag": "new-payments", "variants": ["on"]}],
        "targets": {"allow": ["u-1"], "deny": ["u-666"]},
    },
    {
        "key": "banner",
        "type": "string",
        "state": "on",
        "variants": [{"key": "a", "value": "Hello", "weight": 1}, {"key": "b", "value": "Hi", "weight": 1}],
        "off_variant": "a",
        "targets": {"allow": ["u-1"], "allow_variant": "b"},
    },
    {
        "key": "limits",
        "type": "json",
        "variants": [{"key": "small", "value": {"max": 10, "burst": [1, 2]}, "weight": 1}],
        "off_variant": "small",
    },
]


@pytest.fixture
def acme(tenant: Tenant) -> Tenant:
    for segment in SEGMENTS:
        make_segment(tenant, **segment)
    for flag in FLAGS:
        make_flag(tenant, **flag)
    make_flag(tenant, "retired")
    flag_archive(tenant=tenant, key="retired")
    return tenant


def export(tenant: str, *options: str) -> str:
    out = StringIO()
    call_command("export_flags", "--tenant", tenant, *options, stdout=out)
    return out.getvalue()


def import_file(tenant: str, path: Path, *options: str) -> str:
    out = StringIO()
    call_command("import_flags", "--tenant", tenant, str(path), *options, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, document: Any, name: str = "ruleset.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document))
    return path


def audit_rows(tenant: Tenant) -> int:
    return AuditEntry.objects.for_tenant(tenant).count()


def test_export__live_content_only__sorted_by_key__same_bytes_every_time(acme):
    text = export("acme")
    document = json.loads(text)
    assert document["format_version"] == 1
    assert [s["key"] for s in document["segments"]] == ["beta-testers", "internal"]
    assert [f["key"] for f in document["flags"]] == ["banner", "checkout", "limits", "new-payments"]
    assert "retired" not in text, "archived flags are not exported"
    for flag in document["flags"]:
        assert not {"version", "created_at", "updated_at", "archived_at"} & set(flag)
        assert next(iter(flag)) == "key"
    assert export("acme") == text
    assert export("acme", "--format", "yaml") == export("acme", "--format", "yaml")


@pytest.mark.parametrize("name", ["ruleset.json", "ruleset.yaml"])
def test_export_import__round_trip_into_another_tenant__identical_documents(
    acme, other_tenant, tmp_path, name
):
    path = tmp_path / name
    call_command("export_flags", "--tenant", "acme", "--output", str(path), stderr=StringIO())

    output = import_file("globex", path)

    assert "6 created, 0 updated" in output
    assert export("globex") == export("acme")
    assert export("globex", "--format", "yaml") == export("acme", "--format", "yaml")


def test_import__same_file_twice__changes_nothing(acme, other_tenant, tmp_path):
    path = tmp_path / "ruleset.json"
    path.write_text(export("acme"))
    import_file("globex", path)
    rows, versions = audit_rows(other_tenant), FlagVersion.objects.for_tenant(other_tenant).count()
    ruleset_version = Tenant.objects.get(pk=other_tenant.pk).ruleset_version

    output = import_file("globex", path)

    assert "0 created, 0 updated, 0 archived, 0 deleted, 6 unchanged." in output
    assert "Nothing to do." in output
    assert audit_rows(other_tenant) == rows
    assert FlagVersion.objects.for_tenant(other_tenant).count() == versions
    assert Tenant.objects.get(pk=other_tenant.pk).ruleset_version == ruleset_version
    source_rows = audit_rows(acme)
    assert "6 unchanged." in import_file("acme", path), "an export imported into its own tenant is a no-op"
    assert audit_rows(acme) == source_rows


def test_import__writes_through_the_services__audited_as_import_flags_and_versioned(acme, tmp_path):
    document = json.loads(export("acme"))
    document["flags"][1]["state"] = "off"  # checkout
    document["segments"].append({"key": "vip", "included": ["u-7"]})
    path = write(tmp_path, document)
    before = audit_rows(acme)

    output = import_file("acme", path)

    assert "+ create segment vip" in output and "~ update flag checkout" in output
    assert '    state: "on" -> "off"' in output
    assert audit_rows(acme) == before + 2
    latest = AuditEntry.objects.for_tenant(acme).order_by("-seq")[:2]
    assert {entry.actor for entry in latest} == {"system:import_flags"}
    assert {(entry.entity, entry.entity_key, entry.action) for entry in latest} == {
        ("segment", "vip", "create"),
        ("flag", "checkout", "update"),
    }
    checkout = flag_get(tenant=acme, key="checkout")
    assert checkout is not None and checkout.state == "off" and checkout.version == 2
    assert FlagVersion.objects.for_tenant(acme).get(flag=checkout, version=2).actor == "system:import_flags"


def test_import__bad_operator_in_the_last_flag__writes_nothing_and_names_entity_and_field(
    acme, other_tenant, tmp_path
):
    document = json.loads(export("acme"))
    document["flags"][-1]["rules"] = [
        {"id": "r1", "when": {"attr": "plan", "op": "equals", "value": "pro"}, "serve": {"variant": "on"}}
    ]
    path = write(tmp_path, document)

    with pytest.raises(CommandError) as failure:
        import_file("globex", path)

    message = str(failure.value)
    assert 'flags[3] "new-payments": rules[0].when.op:' in message
    assert "equals" in message and "Nothing was written" in message
    assert audit_rows(other_tenant) == 0
    assert Flag.objects.for_tenant(other_tenant).count() == 0
    assert segment_get(tenant=other_tenant, key="beta-testers") is None


def test_import__every_problem_is_listed_at_once(other_tenant, tmp_path):
    document = {
        "format_version": 1,
        "segments": [{"key": "s", "when": {"attr": "x", "op": "nope"}}],
        "flags": [
            {"key": "a", "state": "maybe"},
            {"key": "a"},
            {"key": "b", "rules": [{"id": "r", "when": {"segment": "missing"}, "serve": {"variant": "on"}}]},
        ],
    }
    with pytest.raises(ImportRejected) as failure:
        ruleset_import(tenant=other_tenant, document=document)
    found = {(problem.where, problem.field) for problem in failure.value.problems}
    assert ('segments[0] "s"', "when.op") in found
    assert ('flags[0] "a"', "state") in found
    assert ('flags[1] "a"', "key") in found, "duplicate key"
    assert ('flags[2] "b"', "rules[0].when.segment") in found
    assert audit_rows(other_tenant) == 0


def test_import__dry_run__prints_the_plan_and_writes_nothing(acme, other_tenant, tmp_path):
    document = json.loads(export("acme"))
    path = write(tmp_path, document)
    document["flags"][1]["state"] = "off"
    changed = write(tmp_path, document, "changed.json")

    into_empty = import_file("globex", path, "--dry-run")
    on_source = import_file("acme", changed, "--dry-run")

    assert "+ create segment beta-testers" in into_empty and "+ create flag checkout" in into_empty
    assert '    prerequisites: null -> [{"flag": "new-payments", "variants": ["on"]}]' in into_empty
    assert "Dry run: nothing was written." in into_empty
    assert "~ update flag checkout" in on_source and '    state: "on" -> "off"' in on_source
    assert "1 to update" in on_source and "5 unchanged" in on_source
    assert audit_rows(other_tenant) == 0 and Flag.objects.for_tenant(other_tenant).count() == 0
    assert flag_get(tenant=acme, key="checkout").state == "on"


def test_import__flags_are_applied_in_prerequisite_order_whatever_the_file_order(other_tenant):
    document = {
        "format_version": 1,
        "segments": [],
        "flags": [
            {"key": "a-child", "prerequisites": [{"flag": "m-parent", "variants": ["on"]}]},
            {"key": "m-parent", "prerequisites": [{"flag": "z-root", "variants": ["on"]}]},
            {"key": "z-root"},
        ],
    }
    plan = ruleset_import(tenant=other_tenant, document=document)
    assert [change.key for change in plan.changes] == ["z-root", "m-parent", "a-child"]
    assert Flag.objects.for_tenant(other_tenant).count() == 3


def test_import__a_prerequisite_cycle_in_the_file__rejected(other_tenant):
    document = {
        "format_version": 1,
        "flags": [
            {"key": "a", "prerequisites": [{"flag": "b", "variants": ["on"]}]},
            {"key": "b", "prerequisites": [{"flag": "a", "variants": ["on"]}]},
        ],
    }
    with pytest.raises(ImportRejected, match="cycle"):
        ruleset_import(tenant=other_tenant, document=document)
    assert Flag.objects.for_tenant(other_tenant).count() == 0


def test_import__flags_missing_from_the_file__left_alone_without_prune(acme):
    document = {"format_version": 1, "segments": [], "flags": [{"key": "extra"}]}
    plan = ruleset_import(tenant=acme, document=document)
    assert [(c.action, c.key) for c in plan.changes] == [("create", "extra")]
    assert flag_get(tenant=acme, key="checkout") is not None
    assert segment_get(tenant=acme, key="internal") is not None


def test_import__prune__archives_missing_flags_and_deletes_missing_segments(acme):
    document = json.loads(json.dumps(ruleset_export(tenant=acme)))
    document["flags"] = [f for f in document["flags"] if f["key"] in ("new-payments", "banner")]
    document["flags"][1]["rules"] = []  # new-payments no longer uses "internal"
    document["segments"] = []

    plan = ruleset_import(tenant=acme, document=document, prune=True)

    assert [(c.action, c.entity, c.key) for c in plan.changes] == [
        ("update", "flag", "new-payments"),
        ("archive", "flag", "checkout"),
        ("archive", "flag", "limits"),
        ("delete", "segment", "beta-testers"),
        ("delete", "segment", "internal"),
    ]
    assert flag_get(tenant=acme, key="checkout") is None
    assert flag_get(tenant=acme, key="checkout", include_archived=True) is not None, "archived, not deleted"
    assert segment_get(tenant=acme, key="internal") is None


def test_import__prune_leaving_a_flag_without_its_segment__rejected(acme):
    document = json.loads(json.dumps(ruleset_export(tenant=acme)))
    document["segments"] = [s for s in document["segments"] if s["key"] != "internal"]
    with pytest.raises(ImportRejected) as failure:
        ruleset_import(tenant=acme, document=document, prune=True)
    assert [(p.where, p.field) for p in failure.value.problems] == [
        ('flags[3] "new-payments"', "rules[0].when.segment")
    ]
    assert segment_get(tenant=acme, key="internal") is not None


def test_import__change_that_breaks_a_live_flag_not_in_the_file__rejected_naming_it(acme):
    payments = next(f for f in ruleset_export(tenant=acme)["flags"] if f["key"] == "new-payments")
    payments["variants"] = [
        {"key": "yes", "value": True, "weight": 1},
        {"key": "off", "value": False, "weight": 1},
    ]
    payments["rules"], payments["default"], payments["targets"] = [], {"variant": "yes"}, {}
    document = {"format_version": 1, "flags": [payments]}

    with pytest.raises(ImportRejected) as failure:
        ruleset_import(tenant=acme, document=document)

    [problem] = failure.value.problems
    assert problem.where == 'flag "checkout" (live, not in the file)'
    assert problem.field.startswith("prerequisites[0]")
    assert flag_get(tenant=acme, key="new-payments").variants[0]["key"] == "on"


def test_import__key_of_an_archived_flag__rejected(acme):
    document = {"format_version": 1, "flags": [{"key": "retired", "state": "on"}]}
    with pytest.raises(ImportRejected, match='flags\\[0\\] "retired": key: belongs to an archived flag'):
        ruleset_import(tenant=acme, document=document)


def test_import__key_of_a_purged_flag__rejected(acme):
    from flags.retention import flags_purge_archived

    Flag._base_manager.filter(tenant=acme, key="retired").update(archived_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert [flag.key for flag in flags_purge_archived(tenant=acme).purged] == ["retired"]
    document = {"format_version": 1, "flags": [{"key": "retired", "state": "on"}]}
    with pytest.raises(
        ImportRejected, match='flags\\[0\\] "retired": key: belonged to a flag that was archived'
    ):
        ruleset_import(tenant=acme, document=document)
    assert flag_get(tenant=acme, key="retired", include_archived=True) is None


def test_import__changing_a_flags_type__rejected_naming_type(acme):
    as_string = {
        "key": "limits",
        "type": "string",
        "variants": [{"key": "a", "value": "x", "weight": 1}],
        "off_variant": "a",
    }
    with pytest.raises(ImportRejected) as failure:
        ruleset_import(tenant=acme, document={"format_version": 1, "flags": [as_string]})
    assert [(p.where, p.field) for p in failure.value.problems] == [('flags[0] "limits"', "type")]
    assert "cannot change (it is 'json')" in str(failure.value)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "(root)"),
        ({"segments": [], "flags": []}, "format_version"),
        ({"format_version": 2, "flags": []}, "format_version"),
        ({"format_version": 1, "flags": {}}, "flags"),
        ({"format_version": 1, "flags": [], "tenant": "acme"}, "tenant"),
        (
            {"format_version": 1, "flags": [{"key": "a", "archived_at": "2026-01-01T00:00:00Z"}]},
            "archived_at",
        ),
    ],
)
def test_import__malformed_document__rejected_naming_the_field(other_tenant, document, field):
    with pytest.raises(ImportRejected) as failure:
        ruleset_import(tenant=other_tenant, document=document)
    assert field in [problem.field for problem in failure.value.problems]


def test_import__a_failure_while_applying__rolls_back_everything(acme, other_tenant, monkeypatch):
    from flags.config_io import importing

    calls = []

    def flag_create_failing_on_the_third(**kwargs: Any) -> Any:
        calls.append(kwargs["data"]["key"])
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return original(**kwargs)

    original = importing.flag_create
    monkeypatch.setattr(importing, "flag_create", flag_create_failing_on_the_third)

    with pytest.raises(RuntimeError):
        ruleset_import(tenant=other_tenant, document=ruleset_export(tenant=acme))

    assert len(calls) == 3
    assert audit_rows(other_tenant) == 0
    assert Flag.objects.for_tenant(other_tenant).count() == 0
    assert segment_get(tenant=other_tenant, key="beta-testers") is None


def test_import__yaml_keeps_on_off_and_dates_as_strings(other_tenant, tmp_path):
    path = tmp_path / "hand-written.yaml"
    path.write_text(
        "format_version: 1\n"
        "flags:\n"
        "  - key: launch\n"
        "    state: on\n"
        "    rules:\n"
        "      - id: after-launch\n"
        "        when: {attr: signup, op: after, value: 2026-01-01}\n"
        "        serve: {variant: on}\n"
    )
    import_file("globex", path)
    flag = flag_get(tenant=other_tenant, key="launch")
    assert flag is not None and flag.state == "on"
    assert flag.rules[0]["when"]["value"] == "2026-01-01"
    assert flag.rules[0]["serve"] == {"variant": "on"}


def test_import_command__unreadable_or_unparsable_file__fails_with_a_message(other_tenant, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        import_file("globex", tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format_version": 1,')
    with pytest.raises(CommandError, match="not valid JSON"):
        import_file("globex", broken)
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        import_file("nope", broken)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('{"format_version": 1, "flags": ' + "[" * 10_000 + "]" * 10_000 + "}", "json"),
        (
            '{"format_version": 1, "flags": [{"key": "a", "variants": [{"key": "on", "weight": 1e999}]}]}',
            None,
        ),
        ("format_version: 1\nflags:\n- key: a\n  variants:\n  - {key: on, weight: .inf}\n", "yaml"),
        ("format_version: 1\nflags:\n- key: a\n  name: " + "9" * 400 + "\n", "yaml"),
        ("a: " + "[" * 5_000 + "]" * 5_000 + "\n", "yaml"),
    ],
)
def test_document_loads__hostile_json_or_yaml__refused_with_a_message(db, text, fmt):
    """Imported documents obey the rule of API bodies: portable JSON, 64 levels at most."""
    with pytest.raises(ValueError, match="refused"):
        document_loads(text, fmt)


def test_document_loads__json_or_yaml(db):
    assert document_loads('{"a": 1}') == {"a": 1}
    assert document_loads("a: 1\nb: off\n") == {"a": 1, "b": "off"}
    with pytest.raises(ValueError, match="neither valid JSON nor valid YAML"):
        document_loads("a: [1,\n")
