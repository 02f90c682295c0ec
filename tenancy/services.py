"""Writes for tenancy: tenants, API clients and the tokens they get."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from tenancy.models import SCOPES, ApiClient, Tenant, hash_client_secret
from tenancy.selectors import api_client_by_id, forget_cached_client, forget_cached_tenant


class TenancyError(Exception):
    """A refused tenancy operation, with a message fit for an operator."""


def tenant_create(*, slug: str, name: str = "") -> Tenant:
    tenant = Tenant(slug=slug, name=name or slug)
    try:
        tenant.full_clean()
    except ValidationError as exc:
        raise TenancyError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError:
        raise TenancyError(f"A tenant with slug {slug!r} already exists.") from None
    return tenant


def tenant_set_active(*, tenant: Tenant, active: bool) -> Tenant:
    with transaction.atomic():
        tenant.is_active = active
        tenant.save(update_fields=["is_active"])
    forget_cached_tenant(tenant.slug)
    return tenant


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    client_secret: str


def api_client_create(*, tenant: Tenant, scopes: list[str], name: str = "") -> IssuedClient:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise TenancyError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
    if not scopes:
        raise TenancyError("Give at least one scope (least privilege: only what the client needs).")
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        tenant=tenant,
        client_id=f"{tenant.slug}-{secrets.token_hex(8)}",
        secret_hash=hash_client_secret(secret),
        name=name,
        scopes=sorted(set(scopes), key=SCOPES.index),
    )
    with transaction.atomic():
        client.save()
    return IssuedClient(client=client, client_secret=secret)


def api_client_revoke(*, client: ApiClient) -> ApiClient:
    with transaction.atomic():
        client.is_active = False
        client.save(update_fields=["is_active"])
    forget_cached_client(client.client_id, client.tenant.slug)
    return client


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def token_issue(*, client_id: str, client_secret: str) -> IssuedToken | None:
    """None for any bad credential, so that callers cannot tell which part was wrong."""
    client = api_client_by_id(client_id)
    if client is None or not client.secret_matches(client_secret):
        return None
    if not client.is_active or not client.tenant.is_active:
        return None
    lifetime = cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"])
    token = AccessToken()
    token.set_exp(lifetime=lifetime)
    scope = " ".join(client.scopes)
    token["sub"] = client.client_id
    token["tenant"] = client.tenant.slug
    token["scope"] = scope
    ApiClient.objects.for_tenant(client.tenant_id).filter(pk=client.pk).update(last_token_at=timezone.now())
    return IssuedToken(access_token=str(token), expires_in=int(lifetime.total_seconds()), scope=scope)
