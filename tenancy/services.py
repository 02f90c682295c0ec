"""Writes for tenancy: tenants, people and their memberships, API clients and the tokens they get."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tenancy import last_known
from tenancy.authentication import ApiAccessToken
from tenancy.models import SCOPES, ApiClient, Membership, Role, Tenant, hash_client_secret
from tenancy.selectors import api_client_by_id, forget_cached_client, forget_cached_tenant


class TenancyError(Exception):
    """A refused tenancy operation, with a message fit for an operator (and the field it is about)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


# The same words whoever holds the username, wherever: the only thing a refused create may tell is that
# the username is not free (docs/adr: people and tenancy).
USERNAME_TAKEN = "This username is taken. Choose another username."


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


def tenant_update(
    *,
    tenant: Tenant,
    name: str | None = None,
    is_active: bool | None = None,
    require_change_reason: bool | None = None,
    protect_new_flags: bool | None = None,
) -> Tenant:
    """Rename, (de)activate and/or set the change policies in one save: one edit is one audit entry."""
    changed: list[str] = []
    if name is not None and name != tenant.name:
        tenant.name, changed = name, [*changed, "name"]
    if is_active is not None and is_active != tenant.is_active:
        tenant.is_active, changed = is_active, [*changed, "is_active"]
    if require_change_reason is not None and require_change_reason != tenant.require_change_reason:
        tenant.require_change_reason = require_change_reason
        changed = [*changed, "require_change_reason"]
    if protect_new_flags is not None and protect_new_flags != tenant.protect_new_flags:
        tenant.protect_new_flags = protect_new_flags
        changed = [*changed, "protect_new_flags"]
    if changed:
        with transaction.atomic():
            tenant.save(update_fields=changed)
        forget_cached_tenant(tenant.slug)
        if "is_active" in changed:
            last_known.remember_tenant(tenant.slug, tenant if tenant.is_active else None)
    return tenant


def tenant_set_active(*, tenant: Tenant, active: bool) -> Tenant:
    return tenant_update(tenant=tenant, is_active=active)


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
    # At once, not when some process next reads it: a process that starts during an outage must
    # refuse this client's tokens even if no request of it was seen since.
    last_known.remember_client(client.tenant.slug, client.client_id, active=False)
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
    token = ApiAccessToken()
    token.set_exp(lifetime=lifetime)
    scope = " ".join(client.scopes)
    token["sub"] = client.client_id
    token["tenant"] = client.tenant.slug
    token["scope"] = scope
    ApiClient.objects.for_tenant(client.tenant_id).filter(pk=client.pk).update(last_token_at=timezone.now())
    return IssuedToken(access_token=str(token), expires_in=int(lifetime.total_seconds()), scope=scope)


# People and memberships -------------------------------------------------------------------------


def _check_username(username: str) -> None:
    field = cast("Field[Any, Any]", get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD))
    try:
        field.clean(username, None)
    except ValidationError as exc:
        raise TenancyError(" ".join(exc.messages), field="username") from None


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise TenancyError(f"Unknown role {role!r}. Known: {', '.join(Role.values)}.", field="role")


def person_create(
    *, username: str, email: str = "", tenant: Tenant, role: str, password: str | None = None
) -> AbstractBaseUser:
    """A new person who can sign in to the admin (staff, never superuser) and their first membership.

    Without a password the account has an unusable one until the person sets theirs through
    `password_set_token`. Refused with `USERNAME_TAKEN` if the username is used by anyone (any case),
    and by nothing else about that other person.
    """
    _check_username(username)
    _check_role(role)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise TenancyError("Enter a valid email address.", field="email") from None
    User = get_user_model()
    user = User(**{User.USERNAME_FIELD: username, "email": email, "is_staff": True, "is_superuser": False})
    if password is None:
        user.set_unusable_password()
    else:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise TenancyError(" ".join(exc.messages), field="password") from None
        user.set_password(password)
    try:
        with transaction.atomic():
            if User._default_manager.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
                raise TenancyError(USERNAME_TAKEN, field="username")
            user.save()
            Membership.objects.for_tenant(tenant).create(user=user, tenant=tenant, role=role)
    except IntegrityError:
        raise TenancyError(USERNAME_TAKEN, field="username") from None
    return user


def password_set_token(user: AbstractBaseUser) -> tuple[str, str]:
    """`(uidb64, token)` for the set-password page: valid for PASSWORD_RESET_TIMEOUT, until it is used
    (setting a password changes the hash the token is made from) or the person signs in."""
    token = default_token_generator.make_token(user)  # type: ignore[arg-type]  # any auth user model
    return urlsafe_base64_encode(force_bytes(user.pk)), token


def person_forget_password(person: AbstractBaseUser) -> None:
    """No usable password until the person sets one: every earlier set-password link stops working."""
    with transaction.atomic():
        person.set_unusable_password()
        person.save(update_fields=["password"])


def _lock_tenant(tenant_id: int) -> None:
    """Serialise membership changes of one tenant, so that two demotions cannot leave it ownerless."""
    Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk", flat=True).first()


def is_last_owner(membership: Membership) -> bool:
    memberships = Membership.objects.for_tenant(membership.tenant_id)
    stored = memberships.filter(pk=membership.pk).values_list("role", flat=True).first()
    if stored != Role.OWNER:
        return False
    return not memberships.filter(role=Role.OWNER).exclude(pk=membership.pk).exists()


def last_owner_message(membership: Membership) -> str:
    return f"{membership.user} is the last owner of {membership.tenant}: make someone else owner first."


def membership_add(*, user: AbstractBaseUser, tenant: Tenant, role: str) -> Membership:
    _check_role(role)
    memberships = Membership.objects.for_tenant(tenant)
    try:
        with transaction.atomic():
            _lock_tenant(tenant.pk)
            if memberships.filter(user=user).exists():
                raise TenancyError(f"{user} is already a member of {tenant}.", field="username")
            return memberships.create(user=user, tenant=tenant, role=role)
    except IntegrityError:
        raise TenancyError(f"{user} is already a member of {tenant}.", field="username") from None


def membership_set_role(*, membership: Membership, role: str) -> Membership:
    _check_role(role)
    with transaction.atomic():
        _lock_tenant(membership.tenant_id)
        if role != Role.OWNER and is_last_owner(membership):
            raise TenancyError(last_owner_message(membership), field="role")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        _lock_tenant(membership.tenant_id)
        if is_last_owner(membership):
            raise TenancyError(last_owner_message(membership))
        membership.delete()
