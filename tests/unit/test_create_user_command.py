"""`manage.py create_user`: operators create a person for the admin, a member of one tenant."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from tenancy.models import Membership

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def create_user(*args: str, stdin: str | None = None) -> str:
    out = StringIO()
    extra = {"stdin": StringIO(stdin)} if stdin is not None else {}
    call_command("create_user", *args, stdout=out, **extra)
    return out.getvalue()


def test_create_user__password_from_stdin__staff_member_of_the_tenant_and_audited(tenant):
    out = create_user(
        "carol", "--tenant", "acme", "--role", "editor", "--email", "carol@example.com", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert out.splitlines()[0] == "Created carol, editor of acme."
    carol = get_user_model().objects.get(username="carol")
    assert (carol.is_staff, carol.is_superuser, carol.email) == (True, False, "carol@example.com")
    assert carol.check_password(PASSWORD)
    assert Membership.all_tenants.get(user=carol).role == "editor"
    entry = AuditEntry.objects.for_tenant(tenant).get(entity="membership")
    assert (entry.actor, entry.action, entry.entity_key) == ("system:create_user", "create", "carol")
    assert PASSWORD not in out


def test_create_user__generated_password__printed_once_in_json(tenant):
    result = json.loads(
        create_user("dave", "--tenant", "acme", "--role", "viewer", "--generate-password", "--json")
    )
    assert {k: v for k, v in result.items() if k != "password"} == {
        "username": "dave", "tenant": "acme", "role": "viewer", "email": "", "created": True,
    }  # fmt: skip
    assert get_user_model().objects.get(username="dave").check_password(result["password"])


def test_create_user__same_request_twice__second_changes_nothing(tenant):
    create_user("erin", "--tenant", "acme", "--role", "owner", "--generate-password")
    before = get_user_model().objects.get(username="erin").password
    result = json.loads(
        create_user("erin", "--tenant", "acme", "--role", "owner", "--generate-password", "--json")
    )
    assert result == {"username": "erin", "tenant": "acme", "role": "owner", "email": "", "created": False}
    assert get_user_model().objects.get(username="erin").password == before
    assert AuditEntry.objects.for_tenant(tenant).filter(entity="membership").count() == 1


def test_create_user__existing_person_with_another_role__clear_error_nothing_changed(tenant, other_tenant):
    create_user("frank", "--tenant", "acme", "--role", "viewer", "--generate-password")
    with pytest.raises(
        CommandError, match=r"'frank' already exists and is viewer of acme\. Nothing was changed"
    ):
        create_user("frank", "--tenant", "acme", "--role", "owner", "--generate-password")
    with pytest.raises(CommandError, match="already exists and is not a member of globex"):
        create_user("frank", "--tenant", "globex", "--role", "viewer", "--generate-password")
    assert list(Membership.all_tenants.filter(user__username="frank").values_list("role", flat=True)) == [
        "viewer"
    ]


def test_create_user__weak_password_or_unknown_tenant__refused(tenant):
    with pytest.raises(CommandError, match=r"too short|too common"):
        create_user("gina", "--tenant", "acme", "--role", "viewer", "--password-stdin", stdin="abc\n")
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        create_user("gina", "--tenant", "nope", "--role", "viewer", "--generate-password")
    assert not get_user_model().objects.filter(username="gina").exists()


def test_create_user__no_terminal_and_no_password_source__refused(tenant):
    with pytest.raises(CommandError, match="use --password-stdin or --generate-password"):
        create_user("hank", "--tenant", "acme", "--role", "viewer")
