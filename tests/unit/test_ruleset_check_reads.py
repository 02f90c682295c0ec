"""The ruleset check reads what it needs (issue 16): the prerequisite graph from the stored dependency
columns and the documents of the flags concerned, never every flag document of the tenant."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flags.models import Flag
from flags.selectors import live_flag_edges, live_flag_graph
from flags.services import flag_archive, flag_update
from kernel.errors import Conflict
from segments.services import segment_delete
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db

DOCUMENT_READ = re.compile(r'SELECT .*"flags_flag"\."rules"', re.DOTALL)


def _unbounded_document_reads(queries: list[dict[str, str]]) -> list[str]:
    """Reads of flag documents (the `rules` column) not limited to named keys or one row."""
    return [
        q["sql"]
        for q in queries
        if DOCUMENT_READ.search(q["sql"])
        and '"flags_flag"."key" IN' not in q["sql"]
        and '"flags_flag"."key" =' not in q["sql"]
        and '"flags_flag"."id" =' not in q["sql"]
    ]


def test_a_flag_write__checks_references_without_reading_every_flag_document(tenant):
    make_segment(tenant, "beta", included=["u-1"])
    make_flag(
        tenant,
        "base",
        type="string",
        state="on",
        variants=[{"key": "a", "value": "a", "weight": 50}, {"key": "b", "value": "b", "weight": 50}],
        off_variant="a",
    )
    for n in range(20):
        make_flag(
            tenant,
            f"other-{n}",
            rules=[{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}],
            prerequisites=[{"flag": "base", "variants": ["b"]}],
        )
    with CaptureQueriesContext(connection) as captured:
        flag_update(tenant=tenant, key="base", data={"state": "off"}, partial=True)
    assert _unbounded_document_reads(captured.captured_queries) == []
    # The verdicts are the same as ever: a variant a dependant needs cannot go; a used segment cannot either.
    with pytest.raises(Conflict) as refused:
        flag_update(
            tenant=tenant,
            key="base",
            data={"variants": [{"key": "a", "value": "a", "weight": 100}]},
            partial=True,
        )
    assert len(refused.value.details["flags"]) == 20
    with CaptureQueriesContext(connection) as captured, pytest.raises(Conflict):
        segment_delete(tenant=tenant, key="beta")
    assert _unbounded_document_reads(captured.captured_queries) == []


def test_the_dependency_columns_follow_every_write(tenant):
    make_segment(tenant, "beta")
    make_segment(tenant, "gamma")
    flag = make_flag(
        tenant, "x", rules=[{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]
    )
    assert (flag.variant_keys, flag.segment_refs) == (["on", "off"], ["beta"])
    flag_update(
        tenant=tenant,
        key="x",
        data={
            "rules": [
                {
                    "id": "r",
                    "when": {"any": [{"segment": "gamma"}, {"segment": "beta"}]},
                    "serve": {"variant": "off"},
                }
            ]
        },
        partial=True,
    )
    stored = Flag.objects.for_tenant(tenant).get(key="x")
    assert stored.segment_refs == ["beta", "gamma"]


def test_live_flag_edges__the_prerequisites_of_every_live_flag_that_has_any(tenant, other_tenant):
    variants = [{"key": "on", "value": True, "weight": 1}, {"key": "off", "value": False, "weight": 1}]
    for key in ("base", "other", "lone"):
        make_flag(tenant, key, variants=variants, off_variant="off")
    make_flag(tenant, "one", prerequisites=[{"flag": "base", "variants": ["on"]}])
    make_flag(
        tenant,
        "two",
        prerequisites=[{"flag": "one", "variants": ["on", "off"]}, {"flag": "other", "variants": ["off"]}],
    )
    make_flag(tenant, "gone", prerequisites=[{"flag": "base", "variants": ["off"]}])
    flag_archive(tenant=tenant, key="gone")
    make_flag(other_tenant, "theirs", prerequisites=[])
    make_flag(other_tenant, "with", prerequisites=[{"flag": "theirs", "variants": ["on"]}])

    edges = live_flag_edges(tenant=tenant)

    assert edges == {
        "one": {"key": "one", "prerequisites": [{"flag": "base", "variants": ["on"]}]},
        "two": {
            "key": "two",
            "prerequisites": [
                {"flag": "one", "variants": ["on", "off"]},
                {"flag": "other", "variants": ["off"]},
            ],
        },
    }
    # The same edges, in the same order, as the per-row read of the whole graph gives them.
    graph = {k: v["prerequisites"] for k, v in live_flag_graph(tenant=tenant).items() if v["prerequisites"]}
    assert list(edges) == list(graph)
    assert {k: v["prerequisites"] for k, v in edges.items()} == graph
    assert live_flag_edges(tenant=other_tenant) == {
        "with": {"key": "with", "prerequisites": [{"flag": "theirs", "variants": ["on"]}]}
    }
