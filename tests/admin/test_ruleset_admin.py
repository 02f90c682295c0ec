"""The admin meets the ruleset check like every write path: a refusal is a message, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.html import escape

from audit.models import AuditEntry
from flags.models import Flag
from flags.services import flag_update
from tests.admin.conftest import signed_in
from tests.admin.test_flag_admin import form_data
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

COLOURS = [
    {"key": "red", "value": "red", "weight": 1},
    {"key": "blue", "value": "blue", "weight": 1},
]
REFUSED_ARCHIVE = (
    "payments: Flag 'payments' is a prerequisite of 1 live flag(s): checkout. "
    "Change those flags first; nothing was changed."
)


@pytest.fixture
def payments(tenant: Any) -> Flag:
    flag = make_flag(tenant, "payments")
    make_flag(tenant, "checkout", prerequisites=[{"flag": "payments", "variants": ["on"]}])
    return flag


def audit_count(tenant: Any) -> int:
    return AuditEntry.objects.for_tenant(tenant).count()


def test_archive_action__flag_live_flags_require__message_and_still_live(editor, tenant, payments):
    entries = audit_count(tenant)

    response = signed_in(editor).post(
        "/admin/flags/flag/", {"action": "archive", "_selected_action": [payments.pk]}, follow=True
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [REFUSED_ARCHIVE]
    assert escape(REFUSED_ARCHIVE.removeprefix("payments: ")) in response.content.decode()
    flag = Flag.objects.for_tenant(tenant).get(pk=payments.pk)
    assert (flag.archived_at, flag.version) == (None, 1)
    assert audit_count(tenant) == entries


def test_change_form__removing_a_variant_a_dependant_requires__form_shown_again_with_the_message(
    editor, tenant
):
    colour = make_flag(tenant, "colour", type="string", variants=COLOURS, off_variant="red")
    make_flag(tenant, "sale", prerequisites=[{"flag": "colour", "variants": ["blue"]}])
    entries = audit_count(tenant)

    response = signed_in(editor).post(
        f"/admin/flags/flag/{colour.pk}/change/", form_data(colour, variants=COLOURS[:1])
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == [
        "Flag 'colour' would lose a variant that 1 live flag(s) require: sale. "
        "Change those flags first; nothing was changed."
    ]
    assert Flag.objects.for_tenant(tenant).get(pk=colour.pk).version == 1
    assert audit_count(tenant) == entries


def test_rollback_view__to_a_version_a_dependant_cannot_live_with__message_nothing_rolled_back(
    editor, tenant
):
    colour = make_flag(tenant, "colour", type="string", variants=COLOURS[:1], off_variant="red")
    flag_update(tenant=tenant, key="colour", data={"variants": COLOURS}, partial=True)
    make_flag(tenant, "sale", prerequisites=[{"flag": "colour", "variants": ["blue"]}])

    response = signed_in(editor).post(
        f"/admin/flags/flag/{colour.pk}/rollback/", {"version": "1"}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [
        "Nothing was rolled back: Flag 'colour' would lose a variant that 1 live flag(s) require: sale. "
        "Change those flags first; nothing was changed."
    ]
    assert Flag.objects.for_tenant(tenant).get(pk=colour.pk).version == 2


def test_change_form__flag_naming_itself__cycle_error_at_prerequisites(editor, tenant):
    loop = make_flag(tenant, "loop")
    data = form_data(loop, prerequisites=[{"flag": "loop", "variants": ["on"]}])

    response = signed_in(editor).post(f"/admin/flags/flag/{loop.pk}/change/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["prerequisites"] == ["The prerequisites would form a cycle: loop -> loop"]
    assert json.loads(json.dumps(Flag.objects.for_tenant(tenant).get(pk=loop.pk).prerequisites)) == []
