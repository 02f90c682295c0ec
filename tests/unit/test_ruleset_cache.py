"""The compiled-ruleset cache: one compile per change, read-your-writes, invalidation receivers."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.db.models.signals import post_delete, post_save

from evaluation import metrics
from evaluation.cache import RULESETS
from evaluation.receivers import EVALUATION_MODELS, invalidate_ruleset
from flags.models import Flag
from flags.services import flag_update
from segments.models import Segment
from tests.factories import make_flag, make_segment

pytestmark = pytest.mark.django_db(transaction=True)


def _misses() -> float:
    return metrics.CACHE_MISSES._value.get()


def test_every_model_that_affects_evaluation_invalidates_the_ruleset():
    assert set(EVALUATION_MODELS) == {Flag, Segment}
    for model in EVALUATION_MODELS:
        for signal in (post_save, post_delete):
            sync_receivers, _ = signal._live_receivers(model)
            assert invalidate_ruleset in sync_receivers, (model, signal)


def test_concurrent_misses__compile_once_per_tenant(tenant):
    make_flag(tenant, "a", state="on")
    before = _misses()
    barrier = threading.Barrier(8)
    versions: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            versions.append(RULESETS.get(tenant).version)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(versions) == 8 and len(set(versions)) == 1
    assert _misses() - before == 1


def test_a_write_is_visible_to_the_next_lookup_in_the_same_process(tenant):
    make_flag(tenant, "a")
    first = RULESETS.get(tenant)
    assert first.flags["a"] is not None
    flag_update(tenant=tenant, key="a", data={"name": "changed", "state": "on"}, partial=True)
    second = RULESETS.get(tenant)
    assert second is not first
    assert int(second.version) > int(first.version)


def test_a_segment_change_recompiles_too(tenant):
    make_segment(tenant, "beta", included=["u-1"])
    first = RULESETS.get(tenant)
    from segments.services import segment_update

    segment_update(tenant=tenant, key="beta", data={"included": ["u-2"]}, partial=True)
    assert RULESETS.get(tenant) is not first


def test_unchanged_ruleset__is_not_recompiled(tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 0
    make_flag(tenant, "a")
    first = RULESETS.get(tenant)
    before = _misses()
    assert RULESETS.get(tenant) is first
    assert _misses() == before


def test_stored_segment_that_no_longer_validates__is_left_out_not_fatal(tenant):
    make_segment(tenant, "beta", included=["u-1"])
    make_flag(
        tenant, "uses-beta", rules=[{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}]
    )
    make_flag(tenant, "plain")
    from django.db import connection

    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE segments_segment SET "when" = %s{cast} WHERE key = %s',
            ['{"attr": "plan", "op": "no-such-operator", "value": 1}', "beta"],
        )
    ruleset = RULESETS.get(tenant)
    assert "plain" in ruleset.flags
    assert "uses-beta" not in ruleset.flags
