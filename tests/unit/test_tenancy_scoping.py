"""Tenancy fails closed: a query that names no tenant raises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django_scopes.exceptions import ScopeError

from audit.models import AuditEntry
from flags.models import Flag, FlagVersion
from segments.models import Segment
from tenancy.scoping import tenant_scope
from tests.factories import make_flag

pytestmark = pytest.mark.django_db

SCOPED_MODELS = [Flag, FlagVersion, Segment, AuditEntry]


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_query_without_tenant__raises(model):
    with pytest.raises(ScopeError):
        list(model.objects.all())
    with pytest.raises(ScopeError):
        model.objects.filter(pk=1).first()
    with pytest.raises(ScopeError):
        model.objects.count()


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


ALLOWED = {"audit/receivers.py", "tenancy/scoping.py", "tenancy/admin_scoping.py"}


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
