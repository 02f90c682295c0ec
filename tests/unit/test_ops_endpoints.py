"""/healthz and /readyz (api.md, Operations)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import override_settings
from rest_framework.test import APIClient

from evaluation.cache import RULESETS
from tests.factories import TenantFactory, make_flag, make_segment

pytestmark = pytest.mark.django_db


def test_healthz__ok_in_plain_text_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = APIClient().get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"ok"
    assert response["X-Request-ID"]


def test_readyz__cold_cache__warms_every_active_tenant_then_ready(tenant, other_tenant):
    make_flag(tenant, "a", state="on")
    inactive = TenantFactory(slug="sleepy", is_active=False)
    RULESETS.clear()
    RULESETS.warmed = False

    response = APIClient().get("/readyz")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"ready"
    assert RULESETS.warmed
    assert RULESETS.is_warm(tenant.pk) and RULESETS.is_warm(other_tenant.pk)
    assert not RULESETS.is_warm(inactive.pk)


def test_readyz__warm__only_pings_the_database(tenant, django_assert_num_queries):
    RULESETS.warm_all()
    with django_assert_num_queries(1):
        response = APIClient().get("/readyz")
    assert response.status_code == 200


@override_settings(RULESET_WARM_ON_START=False)
def test_readyz__warming_disabled__ready_without_compiling(tenant):
    RULESETS.warmed = False
    assert APIClient().get("/readyz").status_code == 200
    assert not RULESETS.is_warm(tenant.pk)


@pytest.fixture
def unreachable_database() -> Iterator[None]:
    """Point the default connection at a database that is not there (a closed port, a missing directory)."""
    original = connections["default"]
    settings_dict = dict(original.settings_dict)
    if original.vendor == "postgresql":
        settings_dict.update(
            HOST="127.0.0.1", PORT="1", OPTIONS={**settings_dict["OPTIONS"], "connect_timeout": 1}
        )
    else:
        settings_dict.update(NAME="/nonexistent-directory/flagsvc.sqlite3")
    broken = original.__class__(settings_dict, alias="default")
    connections["default"] = broken
    try:
        yield
    finally:
        connections["default"] = original
        broken.close()


def test_readyz__database_unreachable__503_naming_the_database(unreachable_database):
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().startswith("database unreachable")


def test_healthz__database_unreachable__still_ok(unreachable_database):
    assert APIClient().get("/healthz").status_code == 200


def test_ops_routes__only_get(db):
    client = APIClient()
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405


def test_readyz__one_tenant_whose_stored_rules_do_not_compile__still_ready(tenant, other_tenant, caplog):
    make_flag(other_tenant, "fine", state="on")
    broken = make_segment(tenant, "beta", included=["u-1"])
    broken.when = {"attr": "plan", "op": "no-such-operator", "value": "pro"}
    broken.save()  # behind the services' back, as an older release or a manual fix could leave it
    RULESETS.clear()
    RULESETS.warmed = False

    response = APIClient().get("/readyz")

    assert response.status_code == 200, "one tenant's bad data must not take every tenant down"
    assert RULESETS.is_warm(other_tenant.pk) and RULESETS.is_warm(tenant.pk)
    assert "beta" not in RULESETS.get(tenant).segments
    assert any(
        getattr(record, "segment", None) == "beta" for record in caplog.records if record.levelname == "ERROR"
    )


def test_home__a_page_of_links_to_the_admin_docs_and_health():
    response = APIClient().get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for link in (
        'href="/admin/"',
        'href="/docs"',
        'href="/redoc"',
        'href="/openapi.json"',
        'href="/healthz"',
    ):
        assert link in page
    assert APIClient().head("/").status_code == 200
    assert APIClient().post("/").status_code == 405
