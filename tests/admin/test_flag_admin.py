"""The flag admin writes through flags.services, shows engine errors at their field, and is audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.html import escape

from audit.models import AuditEntry
from flags.admin.display import rollout_summary
from flags.models import Flag, FlagVersion
from flags.services import flag_update
from tests.admin.conftest import signed_in
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

RULE_NL = {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}


def form_data(flag: Flag | None = None, **overrides: Any) -> dict[str, str]:
    """What the change form posts: the flag's current content, or a new 20 % rollout with one rule."""
    if flag is not None:
        base: dict[str, Any] = {
            **flag.content(),
            "expected_version": flag.version,
            "targets_allow": "\n".join(flag.targets.get("allow", [])),
            "targets_allow_variant": flag.targets.get("allow_variant") or "",
            "targets_deny": "\n".join(flag.targets.get("deny", [])),
        }
        for immutable in ("key", "type", "targets"):
            base.pop(immutable)
    else:
        base = {
            "key": "checkout-redesign",
            "name": "Checkout redesign",
            "type": "boolean",
            "state": "on",
            "variants": [
                {"key": "on", "value": True, "weight": 20},
                {"key": "off", "value": False, "weight": 80},
            ],
            "off_variant": "off",
            "rules": [RULE_NL],
            "default": None,
            "prerequisites": [],
            "tags": ["checkout"],
        }
    base.update(overrides)
    data = {}
    for name, value in base.items():
        if name in ("variants", "rules", "default", "prerequisites"):
            data[name] = "" if value is None else json.dumps(value)
        elif name == "tags":
            data[name] = ", ".join(value)
        elif value is not None:
            data[name] = str(value)
    return data


def _errors(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: [str(e) for e in errs] for name, errs in form.errors.items()}


def _audit(flag_tenant, key: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.for_tenant(flag_tenant).filter(entity_key=key).order_by("seq"))


def test_add_form__defaults_to_a_boolean_flag_that_is_off(editor, tenant):
    form = signed_in(editor).get("/admin/flags/flag/add/").context["adminform"].form
    assert form.initial["type"] == "boolean"
    assert form.initial["state"] == "off"
    assert [v["key"] for v in form.initial["variants"]] == ["on", "off"]
    assert form.fields["tenant"].initial == tenant.pk, "a person with one tenant has it chosen for them"


def test_add__creates_through_the_service__audited_as_the_person(editor, tenant):
    response = signed_in(editor).post("/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data()})
    assert response.status_code == 302, _errors(response)
    flag = Flag.objects.for_tenant(tenant).get(key="checkout-redesign")
    assert (flag.version, flag.state, flag.default) == (1, "on", None)
    assert [(r["id"], r["when"], r["serve"]) for r in flag.rules] == [
        ("nl", RULE_NL["when"], RULE_NL["serve"])
    ]
    assert flag.updated_by == "user:alice"
    [entry] = _audit(tenant, "checkout-redesign")
    assert (entry.action, entry.actor, entry.version) == ("create", "user:alice", 1)
    assert FlagVersion.objects.for_tenant(tenant).filter(flag=flag).count() == 1, "stored with the change"


def test_change__updates_through_the_service__one_new_version(editor, acme_flag):
    data = form_data(acme_flag, state="on", rules=[RULE_NL])
    response = signed_in(editor).post(f"/admin/flags/flag/{acme_flag.pk}/change/", data)
    assert response.status_code == 302, _errors(response)
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.version, flag.state, [r["id"] for r in flag.rules]) == (2, "on", ["nl"])
    entry = _audit(acme_flag.tenant, "checkout")[-1]
    assert (entry.action, entry.actor) == ("update", "user:alice")
    assert set(entry.diff) == {"rules", "state"}


def test_change__nothing_changed__no_new_version(editor, acme_flag):
    response = signed_in(editor).post(f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag))
    assert response.status_code == 302, _errors(response)
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).version == 1


def test_engine_error__shown_at_its_field_with_the_full_path(editor, tenant):
    bad_rule = {**RULE_NL, "when": {"attr": "country", "op": "equals", "value": "NL"}}
    response = signed_in(editor).post(
        "/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data(rules=[bad_rule])}
    )
    assert response.status_code == 200
    errors = _errors(response)
    assert list(errors) == ["rules"]
    assert errors["rules"][0].startswith("rules[0].when.op: ")
    assert not Flag.objects.for_tenant(tenant).exists()


def test_target_errors__shown_at_the_split_target_fields(editor, tenant):
    data = form_data(
        type="string", variants=[{"key": "a", "value": "x"}, {"key": "b", "value": "y"}], off_variant="a"
    )
    data.update(rules="[]", targets_allow="u-1")
    response = signed_in(editor).post("/admin/flags/flag/add/", {"tenant": tenant.pk, **data})
    errors = _errors(response)
    assert errors["targets_allow_variant"][0].startswith("targets.allow_variant: required")


def test_json_syntax_error__shown_at_the_field_and_the_text_kept(editor, tenant):
    data = {"tenant": tenant.pk, **form_data(), "variants": '[{"key": "on",]'}
    response = signed_in(editor).post("/admin/flags/flag/add/", data)
    errors = _errors(response)
    assert errors["variants"][0].startswith("Not valid JSON")
    assert escape('[{"key": "on",]') in response.content.decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 10_000 + "]" * 10_000, "value: nests deeper than 64 levels"),
        ('[{"key": "on", "value": true, "weight": 1e999}]', "[0].weight: must be a finite number"),
        ('[{"key": "on", "value": true, "weight": ' + "9" * 400 + "}]", "[0].weight: integers must lie"),
        ('[{"key": "on\\u0000", "value": true}]', "[0].key: must not contain the NUL character"),
    ],
)
def test_json_box__hostile_json__shown_at_the_field_not_a_500(editor, tenant, text, message):
    """The admin's JSON boxes read through the API's one JSON reader (kernel.json_input)."""
    response = signed_in(editor).post(
        "/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data(), "variants": text}
    )
    assert response.status_code == 200
    assert _errors(response)["variants"][0].startswith(message)
    assert not Flag.objects.for_tenant(tenant).exists()


def test_wrong_json_kind__says_what_the_field_takes(editor, tenant):
    data = {"tenant": tenant.pk, **form_data(), "rules": '{"id": "x"}'}
    assert _errors(signed_in(editor).post("/admin/flags/flag/add/", data))["rules"] == [
        "Must be a JSON list [...]."
    ]


def test_key_taken__error_at_key(editor, tenant, acme_flag):
    data = {"tenant": tenant.pk, **form_data(key="checkout")}
    assert (
        "already belongs to a flag"
        in _errors(signed_in(editor).post("/admin/flags/flag/add/", data))["key"][0]
    )


def test_prerequisite_cycle__error_at_prerequisites(editor, tenant):
    make_flag(tenant, "a")
    make_flag(tenant, "b", prerequisites=[{"flag": "a", "variants": ["on"]}])
    a = Flag.objects.for_tenant(tenant).get(key="a")
    data = form_data(a, prerequisites=[{"flag": "b", "variants": ["on"]}])
    errors = _errors(signed_in(editor).post(f"/admin/flags/flag/{a.pk}/change/", data))
    assert "cycle" in errors["prerequisites"][0]


def test_stale_version__refused_by_the_service__form_shown_again(editor, acme_flag):
    data = form_data(acme_flag, name="Mine")
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"name": "Theirs"}, partial=True)
    response = signed_in(editor).post(f"/admin/flags/flag/{acme_flag.pk}/change/", data)
    assert response.status_code == 200
    assert "is at version 2, not 1" in str(_errors(response))
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).name == "Theirs"


def test_archived_flag__read_only(editor, acme_flag):
    signed_in(editor).post("/admin/flags/flag/", {"action": "archive", "_selected_action": [acme_flag.pk]})
    client = signed_in(editor)
    page = client.get(f"/admin/flags/flag/{acme_flag.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "archived" in page
    assert client.post(f"/admin/flags/flag/{acme_flag.pk}/change/", form_data(acme_flag)).status_code == 403


@pytest.mark.parametrize(
    ("action", "expected_state", "expected_archived", "audit_action"),
    [("turn_on", "on", False, "update"), ("archive", "off", True, "archive")],
)
def test_actions__call_the_services__audited(
    editor, acme_flag, action, expected_state, expected_archived, audit_action
):
    signed_in(editor).post("/admin/flags/flag/", {"action": action, "_selected_action": [acme_flag.pk]})
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.state, flag.archived_at is not None, flag.version) == (expected_state, expected_archived, 2)
    entry = _audit(acme_flag.tenant, "checkout")[-1]
    assert (entry.action, entry.actor) == (audit_action, "user:alice")


def test_restore_action__brings_an_archived_flag_back(editor, acme_flag):
    client = signed_in(editor)
    client.post("/admin/flags/flag/", {"action": "archive", "_selected_action": [acme_flag.pk]})
    client.post("/admin/flags/flag/", {"action": "restore", "_selected_action": [acme_flag.pk]})
    client.post("/admin/flags/flag/", {"action": "turn_off", "_selected_action": [acme_flag.pk]})
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.archived_at, flag.version) == (None, 3), "turning off a flag that is off changes nothing"
    assert [e.action for e in _audit(acme_flag.tenant, "checkout")] == ["create", "archive", "restore"]


def test_changelist__columns_and_filters(editor, acme_flag):
    flag_update(
        tenant=acme_flag.tenant,
        key="checkout",
        data={"rules": [RULE_NL], "state": "on"},
        partial=True,
        actor="user:bob",
    )
    client = signed_in(editor)
    page = client.get("/admin/flags/flag/").content.decode()
    assert "rule→on, else 20% on / 80% off" in page
    assert "by user:bob" in page
    for query, expected in [
        ({"tag": "checkout"}, 1),
        ({"tag": "nope"}, 0),
        ({"state": "off"}, 0),
        ({"archived": "yes"}, 0),
    ]:
        assert client.get("/admin/flags/flag/", query).context["cl"].result_count == expected, query


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"state": "off"}, "off → off"),
        ({}, "20% on / 80% off"),
        ({"default": {"variant": "on"}}, "on"),
        ({"rules": [RULE_NL], "default": {"distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]}},
         "rule→on, else 50% on / 50% off"),
        ({"rules": [RULE_NL, {**RULE_NL, "id": "x"}], "targets": {"allow": ["u-1"]}}, "1 allowed→on, 2 rules, else 20% on / 80% off"),
    ],
)  # fmt: skip
def test_rollout_summary(tenant, fields, expected):
    base = {
        "state": "on",
        "variants": [
            {"key": "on", "value": True, "weight": 20},
            {"key": "off", "value": False, "weight": 80},
        ],
    }
    assert rollout_summary(make_flag(tenant, "f", **{**base, **fields})) == expected


def test_history__timeline_with_actor_and_readable_diff(editor, acme_flag):
    flag_update(tenant=acme_flag.tenant, key="checkout", data={"state": "on"}, partial=True, actor="user:bob")
    response = signed_in(editor).get(f"/admin/flags/flag/{acme_flag.pk}/history/")
    assert response.status_code == 200
    items = response.context["items"]
    assert [(i.entry.version, i.entry.action, i.entry.actor) for i in items] == [
        (2, "update", "user:bob"),
        (1, "create", "system:test"),
    ]
    assert [(c.kind, c.subject, c.before, c.after) for c in items[0].changes] == [
        ("changed", "State", "off", "on")
    ]
    assert [i.can_roll_back for i in items] == [False, True]
    assert "Roll back to v1" in response.content.decode()


def test_rollback__new_version_with_the_old_content__audited(editor, acme_flag):
    flag_update(
        tenant=acme_flag.tenant, key="checkout", data={"state": "on", "name": "Changed"}, partial=True
    )
    response = signed_in(editor).post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/flags/flag/{acme_flag.pk}/history/")
    flag = Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk)
    assert (flag.version, flag.state, flag.name) == (3, "off", "Checkout redesign")
    entry = _audit(acme_flag.tenant, "checkout")[-1]
    assert (entry.action, entry.actor, entry.version) == ("rollback", "user:alice", 3)


def test_rollback__get_without_a_version_is_a_message__unknown_version_is_a_message(editor, acme_flag):
    client = signed_in(editor)
    response = client.get(f"/admin/flags/flag/{acme_flag.pk}/rollback/", follow=True)
    assert "Choose a version to roll back to." in response.content.decode()
    assert client.put(f"/admin/flags/flag/{acme_flag.pk}/rollback/").status_code == 405
    response = client.post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "42"}, follow=True)
    assert "has no version 42" in response.content.decode()
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).version == 1


def test_rollback__csrf_protected(editor, acme_flag):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.post(f"/admin/flags/flag/{acme_flag.pk}/rollback/", {"version": "1"}).status_code == 403


def _preview(
    client,
    url: str,
    data: dict[str, str],
    user_id: str = "u-42",
    attributes: tuple[tuple[str, str, str], ...] = (),
) -> tuple[int, Any]:
    """Post the form with the preview user's attributes as the panel's rows: (name, type, value)."""
    rows = {
        "_preview_attr_key": [name for name, _, _ in attributes],
        "_preview_attr_type": [kind for _, kind, _ in attributes],
        "_preview_attr_value": [value for _, _, value in attributes],
    }
    response = client.post(url, {**data, "_preview_user_id": user_id, **rows})
    return response.status_code, json.loads(response.content)


def test_preview__unsaved_draft__variant_reason_trace_and_sample(editor, acme_flag):
    draft = form_data(acme_flag, state="on", rules=[RULE_NL])
    status, body = _preview(
        signed_in(editor),
        f"/admin/flags/flag/{acme_flag.pk}/preview/",
        draft,
        attributes=(("country", "text", "NL"),),
    )
    assert status == 200, body
    assert (body["draft"], body["result"]["variant"], body["result"]["reason"], body["result"]["rule_id"]) == (
        True, "on", "RULE_MATCH", "nl",
    )  # fmt: skip
    assert [step["step"] for step in body["result"]["trace"]][-1] == "rule"
    assert body["sample"]["size"] == 1000
    on = body["sample"]["variants"]["on"]
    assert 200 < on < 1000, "the sample varies country: NL users get on, the others 20 %"
    assert body["sample"]["changed"] == on, "the stored flag is off: every sample user gets off today"
    assert body["sample"]["moves"] == [{"from": "off", "to": "on", "count": on}]
    assert body["sample"]["varied"] == ["country"]
    assert Flag.objects.for_tenant(acme_flag.tenant).get(pk=acme_flag.pk).version == 1, (
        "a preview saves nothing"
    )


def test_preview__new_flag__split_of_the_sample(editor, tenant):
    status, body = _preview(
        signed_in(editor), "/admin/flags/flag/preview/", {"tenant": str(tenant.pk), **form_data(rules=[])}
    )
    assert status == 200, body
    assert body["result"]["reason"] == "PERCENTAGE_ROLLOUT"
    assert body["sample"]["changed"] is None
    assert 150 < body["sample"]["variants"]["on"] < 250, "about 20 % of 1,000 different ids"


def test_preview__invalid_draft__422_with_the_field_errors(editor, acme_flag):
    draft = form_data(acme_flag, rules=[{**RULE_NL, "serve": {"variant": "maybe"}}])
    status, body = _preview(signed_in(editor), f"/admin/flags/flag/{acme_flag.pk}/preview/", draft)
    assert status == 422
    assert body["fields"][0]["field"] == "rules"
    assert body["fields"][0]["messages"][0].startswith("rules[0].serve.variant:")


def test_preview__bad_attribute_row__422_that_names_the_row(editor, acme_flag):
    status, body = _preview(
        signed_in(editor),
        f"/admin/flags/flag/{acme_flag.pk}/preview/",
        form_data(acme_flag),
        attributes=(("age", "number", "thirty"),),
    )
    assert status == 422
    assert body["error"] == "Attributes: age: 'thirty' is not a number (e.g. 42 or 2.5)."


def test_preview__unknown_flag_id__404_not_a_preview_of_a_new_flag(editor, tenant):
    response = signed_in(editor).post(
        "/admin/flags/flag/999999/preview/",
        {"tenant": str(tenant.pk), **form_data(), "_preview_user_id": "u"},
    )
    assert response.status_code == 404


def test_preview__signed_out__redirected_to_sign_in_nothing_evaluated(acme_flag):
    from django.test import Client

    response = Client().post(f"/admin/flags/flag/{acme_flag.pk}/preview/", {"_preview_user_id": "u"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_preview__csrf_protected(editor, acme_flag):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(f"/admin/flags/flag/{acme_flag.pk}/preview/", {"_preview_user_id": "u"})
    assert response.status_code == 403


def test_preview__viewer__evaluates_the_stored_flag(viewer, acme_flag):
    draft = form_data(acme_flag, state="on")
    status, body = _preview(signed_in(viewer), f"/admin/flags/flag/{acme_flag.pk}/preview/", draft)
    assert status == 200
    assert (body["draft"], body["result"]["reason"], body["sample"]) == (False, "OFF", None)


def test_add__tenant_protects_new_flags__box_ticked_and_fixed__flag_created_protected(editor, tenant):
    from tenancy.services import tenant_update

    tenant_update(tenant=tenant, protect_new_flags=True)
    client = signed_in(editor)
    form = client.get("/admin/flags/flag/add/").context["adminform"].form
    assert form.initial["protected"] is True
    assert form.fields["protected"].disabled, "the box shows what will happen; it cannot be unticked"
    assert "New flags of acme are always created protected" in str(form.fields["protected"].help_text)
    response = client.post("/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data()})
    assert response.status_code == 302, _errors(response)
    assert Flag.objects.for_tenant(tenant).get(key="checkout-redesign").protected is True


def test_add__superuser_with_tenants_of_both_policies__box_free__policy_still_applies(
    superuser, tenant, other_tenant
):
    from tenancy.services import tenant_update

    tenant_update(tenant=tenant, protect_new_flags=True)
    client = signed_in(superuser)
    form = client.get("/admin/flags/flag/add/").context["adminform"].form
    assert not form.fields["protected"].disabled
    assert "New flags of acme are always created protected" in str(form.fields["protected"].help_text)
    response = client.post("/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data()})
    assert response.status_code == 302, _errors(response)
    assert Flag.objects.for_tenant(tenant).get(key="checkout-redesign").protected is True
    response = client.post("/admin/flags/flag/add/", {"tenant": other_tenant.pk, **form_data()})
    assert response.status_code == 302, _errors(response)
    assert Flag.objects.for_tenant(other_tenant).get(key="checkout-redesign").protected is False


def test_add__no_policy__unticked_box_creates_an_unprotected_flag(editor, tenant):
    client = signed_in(editor)
    form = client.get("/admin/flags/flag/add/").context["adminform"].form
    assert not form.initial.get("protected")
    assert "always created protected" not in str(form.fields["protected"].help_text)
    client.post("/admin/flags/flag/add/", {"tenant": tenant.pk, **form_data()})
    assert Flag.objects.for_tenant(tenant).get(key="checkout-redesign").protected is False


def test_protect_action__protects_directly__audited__then_changes_need_approval(editor, acme_flag):
    from flags.models import ChangeRequest

    client = signed_in(editor)
    client.post("/admin/flags/flag/", {"action": "protect", "_selected_action": [acme_flag.pk]})
    acme_flag.refresh_from_db()
    assert (acme_flag.protected, acme_flag.version) == (True, 2)
    entry = _audit(acme_flag.tenant, "checkout")[-1]
    assert (entry.action, entry.actor) == ("update", "user:alice")
    state = acme_flag.state
    other = "off" if state == "on" else "on"
    client.post("/admin/flags/flag/", {"action": f"turn_{other}", "_selected_action": [acme_flag.pk]})
    acme_flag.refresh_from_db()
    assert acme_flag.state == state, "a protected flag's change waits for approval"
    assert ChangeRequest.objects.for_tenant(acme_flag.tenant).get().proposed["state"] == other
