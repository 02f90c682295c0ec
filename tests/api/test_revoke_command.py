"""`manage.py revoke_api_client`: the runbook for a leaked client secret (docs/operations.md)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenancy.services import api_client_create, token_issue

pytestmark = pytest.mark.django_db


def test_revoke_api_client__its_tokens_and_its_secret_stop_working(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    token = token_issue(client_id=issued.client.client_id, client_secret=issued.client_secret)
    assert token is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.access_token}", HTTP_X_TENANT_ID=tenant.slug)
    assert client.get("/v1/flags").status_code == 200

    out = StringIO()
    call_command("revoke_api_client", issued.client.client_id, stdout=out)

    assert f"Revoked {issued.client.client_id} (acme)" in out.getvalue()
    assert client.get("/v1/flags").status_code == 401
    response = APIClient().post(
        "/v1/auth/token",
        {"client_id": issued.client.client_id, "client_secret": issued.client_secret},
        format="json",
    )
    assert response.status_code == 401


def test_revoke_api_client__twice_or_unknown(tenant):
    issued = api_client_create(tenant=tenant, scopes=["flags:read"])
    call_command("revoke_api_client", issued.client.client_id, stdout=StringIO())
    out = StringIO()
    call_command("revoke_api_client", issued.client.client_id, stdout=out)
    assert "already revoked" in out.getvalue()
    with pytest.raises(CommandError, match="No API client"):
        call_command("revoke_api_client", "acme-nope")
