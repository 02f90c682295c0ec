"""Tenancy fails closed: a query that names no tenant raises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models
from django_scopes.exceptions import ScopeError

from audit.models import AuditEntry
from flags.models import Flag, FlagVersion
from segments.models import Segment
from tenancy.models import Tenant
from tenancy.scoping import tenant_scope
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

SCOPED_MODELS = [Flag, FlagVersion, Segment, AuditEntry]


def _tenant_owned_models() -> list[type[models.Model]]:
    """Every installed model with a foreign key to Tenant, found through the app registry."""
    return sorted(
        (
            model
            for model in apps.get_models()
            if any(isinstance(f, models.ForeignKey) and f.related_model is Tenant for f in model._meta.fields)
        ),
        key=lambda m: m._meta.label,
    )


def test_tenant_owned_models__found_by_the_registry__include_the_known_ones():
    labels = {m._meta.label for m in _tenant_owned_models()}
    assert labels >= {
        "flags.Flag",
        "flags.FlagVersion",
        "segments.Segment",
        "audit.AuditEntry",
        "audit.ChangeEvent",
        "tenancy.ApiClient",
        "tenancy.Membership",
        "tenancy.IdempotentResponse",
    }


@pytest.mark.parametrize("model", _tenant_owned_models(), ids=lambda m: m._meta.label)
def test_every_tenant_owned_model__default_manager_without_a_scope__raises(model):
    manager = model._default_manager
    for query in (
        lambda: list(manager.all()),
        lambda: manager.filter(pk=1).first(),
        lambda: manager.count(),
        lambda: manager.exists(),
        lambda: manager.get(pk=1),
    ):
        with pytest.raises(ScopeError):
            query()


@pytest.mark.parametrize("model", _tenant_owned_models(), ids=lambda m: m._meta.label)
def test_every_tenant_owned_model__inside_a_scope__queries(model, tenant):
    assert model._default_manager.for_tenant(tenant).count() == 0
    with tenant_scope(tenant):
        assert list(model._default_manager.all()) == []


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_query_without_tenant__raises(model):
    with pytest.raises(ScopeError):
        list(model.objects.all())
    with pytest.raises(ScopeError):
        model.objects.filter(pk=1).first()
    with pytest.raises(ScopeError):
        model.objects.count()


def test_scope_of_no_tenant__refused_not_every_tenant(tenant, other_tenant):
    make_flag(tenant, "a")
    with pytest.raises(ScopeError), tenant_scope(None):
        list(Flag.objects.all())
    with pytest.raises(ScopeError):
        Flag.objects.for_tenant(None)
    with tenant_scope([]):
        assert list(Flag.objects.all()) == []


def test_query_with_tenant__sees_only_that_tenant(tenant, other_tenant):
    make_flag(tenant, "a")
    make_flag(other_tenant, "b")
    assert [f.key for f in Flag.objects.for_tenant(tenant)] == ["a"]
    with tenant_scope(other_tenant):
        assert [f.key for f in Flag.objects.all()] == ["b"]


def test_bulk_writes_on_audited_models__refused(tenant):
    make_flag(tenant, "a")
    with pytest.raises(TypeError):
        Flag.objects.for_tenant(tenant).update(name="x")
    with pytest.raises(TypeError):
        Flag.objects.for_tenant(tenant).all().delete()


ALLOWED = {
    "audit/receivers.py": "on the list from the start (no use today)",
    "audit/outbox.py": "retention prunes every tenant's old events at once (prune_events)",
    "tenancy/scoping.py": "defines the escape hatch",
    "tenancy/admin_scoping.py": "superusers' admin, and a person's memberships (what the scope is made of)",
    "tenancy/selectors.py": "POST /v1/auth/token finds a client by its id before any tenant is known",
    "webhooks/worker.py": "the worker fans every tenant's events out and delivers every tenant's webhooks",
    "usage/services.py": "retention prunes every tenant's old usage counts and batch ids at once",
    "flags/rollouts/scheduler.py": "the worker finds every tenant's due rollout plans (then locks each in its tenant)",
    "flags/retention.py": "the worker finds the tenants with archived flags due for purge (then purges each in its tenant)",
}


def test_all_tenants_escape_hatch_is_used_only_on_the_allow_list():
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.glob("*/**/*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".venv", "tests/", "sdk/", "benchmarks/")) or "/migrations/" in rel:
            continue
        text = path.read_text()
        if re.search(r"\.all_tenants\b|scopes_disabled\(|all_tenants_scope\(", text) and rel not in ALLOWED:
            offenders.append(rel)
    assert offenders == [], f"unscoped access outside the allow-list: {offenders}"
