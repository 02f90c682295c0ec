"""People with memberships, and flags/segments in two tenants, for the admin tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from flags.models import Flag
from segments.models import Segment
from tenancy.models import Membership, Tenant
from tests.factories import make_flag, make_segment

PASSWORD = "correct-horse-battery-staple"

PersonFactory = Callable[..., AbstractBaseUser]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """People are made in every test; the production hasher would make that the slowest part."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_person(db: Any) -> PersonFactory:
    def make(
        username: str, roles: dict[Tenant, str] | None = None, *, superuser: bool = False
    ) -> AbstractBaseUser:
        user = get_user_model().objects.create_user(
            username=username, password=PASSWORD, is_staff=True, is_superuser=superuser
        )
        for tenant, role in (roles or {}).items():
            Membership.all_tenants.create(user=user, tenant=tenant, role=role)
        return user

    return make


def signed_in(user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme_flag(tenant: Tenant) -> Flag:
    return make_flag(
        tenant,
        "checkout",
        name="Checkout redesign",
        description="New checkout flow",
        variants=[{"key": "on", "value": True, "weight": 20}, {"key": "off", "value": False, "weight": 80}],
        tags=["checkout"],
    )


@pytest.fixture
def globex_flag(other_tenant: Tenant) -> Flag:
    return make_flag(other_tenant, "globex-secret", name="Globex secret plan", tags=["secret"])


@pytest.fixture
def acme_segment(tenant: Tenant) -> Segment:
    return make_segment(tenant, "beta", included=["u-1"])


@pytest.fixture
def globex_segment(other_tenant: Tenant) -> Segment:
    return make_segment(other_tenant, "globex-vip", included=["g-1"])


@pytest.fixture
def editor(make_person: PersonFactory, tenant: Tenant) -> AbstractBaseUser:
    return make_person("alice", {tenant: "editor"})


@pytest.fixture
def viewer(make_person: PersonFactory, tenant: Tenant) -> AbstractBaseUser:
    return make_person("victor", {tenant: "viewer"})


@pytest.fixture
def owner(make_person: PersonFactory, tenant: Tenant) -> AbstractBaseUser:
    return make_person("olivia", {tenant: "owner"})


@pytest.fixture
def outsider(make_person: PersonFactory, other_tenant: Tenant) -> AbstractBaseUser:
    """An owner of globex, who must not learn anything about acme."""
    return make_person("gus", {other_tenant: "owner"})


@pytest.fixture
def superuser(make_person: PersonFactory) -> AbstractBaseUser:
    return make_person("root", superuser=True)
