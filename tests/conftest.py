from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from evaluation.cache import RULESETS
from evaluation.snapshot import SNAPSHOTS
from tenancy import selectors as tenancy_selectors
from tenancy.authentication import forget_verified_tokens
from tenancy.models import SCOPES, Tenant
from tenancy.services import api_client_create, token_issue
from tests.factories import TenantFactory


def pytest_configure(config: pytest.Config) -> None:
    """`make test-postgres` runs on the compiled engine production installs; never silently not."""
    if os.environ.get("FLAGSVC_REQUIRE_COMPILED_ENGINE") == "1":
        import flagsvc_sdk.engine

        if not flagsvc_sdk.engine.COMPILED:
            raise pytest.UsageError(
                "FLAGSVC_REQUIRE_COMPILED_ENGINE=1 but flagsvc_sdk.engine is plain Python "
                f"({flagsvc_sdk.engine.__file__}): run `make compiled-sdk` and put it on PYTHONPATH"
            )


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Iterator[None]:
    """Database rows roll back between tests; the in-process caches must forget them too."""
    RULESETS.clear()
    RULESETS.warmed = False
    SNAPSHOTS.clear()
    tenancy_selectors.clear_caches()
    forget_verified_tokens()
    cache.clear()
    yield
    RULESETS.clear()
    SNAPSHOTS.clear()
    tenancy_selectors.clear_caches()


TEST_SNAPSHOT_SIGNING_KEY = "dGVzdC1vbmx5LXNuYXBzaG90LXNpZ25pbmcta2V5ISE"
"""base64url of 32 bytes (`test-only-snapshot-signing-key!!`): the tests run with DEBUG off, so they
sign with a key of their own, as production does (evaluation.snapshot_keys)."""


@pytest.fixture(autouse=True)
def _snapshot_signing_key(settings: Any) -> None:
    if not settings.SNAPSHOT_SIGNING_KEY and not settings.SNAPSHOT_SIGNING_KEY_FILE:
        settings.SNAPSHOT_SIGNING_KEY = TEST_SNAPSHOT_SIGNING_KEY


@pytest.fixture(autouse=True)
def _own_last_known_directory(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test keeps the last known state (ADR 0007) in a directory of its own, never the machine's."""
    settings.LAST_KNOWN_DIR = str(tmp_path_factory.mktemp("last-known"))


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return TenantFactory(slug="acme")


@pytest.fixture
def other_tenant(db: Any) -> Tenant:
    return TenantFactory(slug="globex")


def token_for(tenant: Tenant, scopes: list[str] | tuple[str, ...] = SCOPES) -> tuple[str, str]:
    issued = api_client_create(tenant=tenant, scopes=list(scopes), name="test")
    token = token_issue(client_id=issued.client.client_id, client_secret=issued.client_secret)
    assert token is not None
    return issued.client.client_id, token.access_token


ApiFactory = Callable[..., APIClient]


@pytest.fixture
def make_api(db: Any) -> ApiFactory:
    def make(
        tenant: Tenant, scopes: list[str] | tuple[str, ...] = SCOPES, tenant_header: str | None = None
    ) -> APIClient:
        _, token = token_for(tenant, scopes)
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_X_TENANT_ID=tenant_header if tenant_header is not None else tenant.slug,
        )
        return client

    return make


@pytest.fixture
def api(make_api: ApiFactory, tenant: Tenant) -> APIClient:
    return make_api(tenant)


@pytest.fixture
def other_api(make_api: ApiFactory, other_tenant: Tenant) -> APIClient:
    return make_api(other_tenant)
