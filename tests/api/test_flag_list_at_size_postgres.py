"""At 10,000 flags in a tenant, the flag lists use indexes (issue 16): the queries the API list and the
admin list really run (captured) are EXPLAINed on PostgreSQL, and none reads the flag table whole.

The tenant sits among others (40,000 flags in all), as in a shared installation, and the statistics
are fresh (VACUUM ANALYZE), so the planner chooses as it would in production. A deep page
(`offset=9000`) still sorts the rows before it: limit/offset paging (api.md) costs O(offset).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flags.models import Flag
from tenancy.models import Membership, Role, Tenant
from tests.factories import TenantFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,  # each test rolls back; the seeded flags (committed once) stay for the module
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]

BIG = 10_000
OTHERS = 30
PER_OTHER = 1_000
WORDS = ("checkout", "search", "billing", "profile", "onboarding", "export", "pricing", "mobile")
TAGS = ("team-a", "team-b", "web", "ios", "android", "beta", "ops", "growth")


def _flag(tenant: Tenant, n: int) -> Flag:
    word = WORDS[n % len(WORDS)]
    flag = Flag(
        tenant=tenant,
        key=f"{word}-{n:05d}",
        name=f"{word.title()} experiment {n}",
        description=f"Rolls out the {word} change number {n} to a share of users.",
        type="boolean",
        state="on" if n % 3 else "off",
        variants=[{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}],
        off_variant="off",
        targets={"allow": [], "deny": [], "allow_variant": None},
        rules=[],
        prerequisites=[],
        bucket_by="id",
        archived_at=timezone.now() if n % 50 == 0 else None,
    )
    flag.apply_content({"tags": [TAGS[n % len(TAGS)], TAGS[(n * 7) % len(TAGS)]]})
    return flag


@pytest.fixture(scope="module")
def big_tenant(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Tenant]:
    with django_db_blocker.unblock():
        tenant = TenantFactory(slug="big")
        tenants = [tenant, *(TenantFactory() for _ in range(OTHERS))]
        rows = [_flag(tenant, n) for n in range(BIG)]
        rows += [_flag(small, n) for small in tenants[1:] for n in range(PER_OTHER)]
        random.Random(16).shuffle(rows)  # the tenants' flags arrive over time, interleaved in the table
        Flag.all_tenants.bulk_create(rows, batch_size=2_000)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE flags_flag")
        yield tenant
        seeded = Flag.all_tenants.filter(tenant__in=tenants)
        seeded._raw_delete(seeded.db)
        Tenant.objects.filter(pk__in=[t.pk for t in tenants]).delete()


def _plans(queries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(sql, plan) of every captured SELECT that reads the flag table."""
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or '"flags_flag"' not in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, TIMING OFF) " + sql)
            plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


MAX_ROWS_FILTERED = 1_000
"""For a selective search (few matches), a scan of the flag table may read and drop at most this many
rows: an index scan that drops the tenant's other 9,999 flags one by one is a sequential scan of the
tenant under another name. (Where a filter matches a good share of the flags, e.g. `state=on`, the
planner rightly walks the tenant's index and drops the rest; that is not checked.)"""
FILTERED = re.compile(r"Rows Removed by Filter: (\d+)")


def _assert_indexed(plans: list[tuple[str, str]], *, selective: bool) -> None:
    assert plans, "no query on the flag table was captured"
    for sql, plan in plans:
        assert "Seq Scan on flags_flag" not in plan, f"{sql}\n{plan}"
        assert "on flags_flag" in plan and "Index" in plan, f"{sql}\n{plan}"
        if selective:
            assert max(map(int, FILTERED.findall(plan)), default=0) <= MAX_ROWS_FILTERED, f"{sql}\n{plan}"


SELECTIVE = ("?key_prefix=pricing-0001", "?q=experiment%201234", "?q=zzz-nothing", "?q=experiment+1234")
API_LISTS = [
    "",
    "?limit=200&offset=9000",
    "?state=on",
    "?state=off&limit=10&offset=3000",
    "?type=boolean",
    "?tag=beta",
    "?tag=growth&state=on",
    "?key_prefix=billing-",
    "?key_prefix=pricing-0001",
    "?q=onboarding",
    "?q=experiment%201234",
    "?q=zzz-nothing",
    "?include_archived=true&offset=5000",
    "?include_archived=true&q=mobile&tag=ios",
]


@pytest.mark.parametrize("query", API_LISTS)
def test_api_flag_list_at_10000_flags__uses_indexes(big_tenant: Tenant, make_api: Any, query: str) -> None:
    api = make_api(big_tenant)
    with CaptureQueriesContext(connection) as captured:
        response = api.get(f"/v1/flags{query}")
    assert response.status_code == 200
    _assert_indexed(_plans(captured.captured_queries), selective=query in SELECTIVE)


ADMIN_LISTS = [
    "",
    "?p=50",
    "?state__exact=on",
    "?type__exact=boolean",
    "?tag=beta",
    "?q=onboarding",
    "?q=experiment+1234",
    "?o=5",
    "?archived=yes",
]


@pytest.mark.parametrize("query", ADMIN_LISTS)
def test_admin_flag_list_at_10000_flags__uses_indexes(big_tenant: Tenant, query: str) -> None:
    from django.contrib.auth import get_user_model

    person = get_user_model().objects.create_user(username=f"viewer{abs(hash(query))}", is_staff=True)
    Membership.all_tenants.create(user=person, tenant=big_tenant, role=Role.VIEWER)
    client = Client()
    client.force_login(person)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/admin/flags/flag/{query}")
    assert response.status_code == 200
    _assert_indexed(_plans(captured.captured_queries), selective=query in SELECTIVE)
