"""Incremental compile in the server (ADR 0018) and the cap on compiled rulesets per process.

A process holding an older version applies only the changes the outbox names after it, and gives the
same answers as a full compile from the database; it compiles the whole tenant when it cannot be sure.
A second `RulesetCache` stands for another process: it has its own memory and learns of the changes
only through the shared version and the outbox, as another process does.
"""

from __future__ import annotations

from typing import Any

import pytest
from flagsvc_sdk.engine import CompiledRuleset, evaluate_many, validate_user

from audit.models import ChangeEvent
from evaluation import metrics
from evaluation.cache import RULESETS, RulesetCache, build_ruleset
from flags.approvals import ApprovalRequired
from flags.killswitch import killswitch_engage
from flags.services import flag_archive, flag_update
from segments.services import segment_delete, segment_update
from tenancy.models import Tenant
from tests.factories import TenantFactory, make_flag, make_segment

pytestmark = pytest.mark.django_db(transaction=True)

USERS = [
    validate_user({"id": f"u-{n}", "attributes": {"plan": plan}})
    for n in range(8)
    for plan in ("pro", "free")
]


def _full() -> float:
    return metrics.COMPILES_FULL._value.get()


def _incremental() -> float:
    return metrics.COMPILES_INCREMENTAL._value.get()


def _answers(ruleset: CompiledRuleset) -> list[Any]:
    return [list(ruleset.flags), list(ruleset.segments), ruleset.version] + [
        {key: result.to_dict() for key, result in evaluate_many(ruleset, who).items()} for who in USERS
    ]


def _same_as_full_compile(ruleset: CompiledRuleset, tenant: Tenant) -> None:
    tenant.refresh_from_db()
    assert _answers(ruleset) == _answers(build_ruleset(tenant, tenant.ruleset_version))


def _seed(tenant: Tenant) -> None:
    make_segment(tenant, "pros", when={"attr": "plan", "op": "eq", "value": "pro"})
    make_segment(tenant, "few", included=["u-1", "u-2"])
    make_flag(tenant, "base", state="on")
    make_flag(
        tenant,
        "uses-pros",
        state="on",
        rules=[{"id": "r", "when": {"segment": "pros"}, "serve": {"variant": "on"}}],
        default={"variant": "off"},
        prerequisites=[{"flag": "base", "variants": ["on"]}],
    )
    make_flag(
        tenant,
        "uses-few",
        state="on",
        rules=[{"id": "r", "when": {"not": {"segment": "few"}}, "serve": {"variant": "on"}}],
        default={"variant": "off"},
    )


def test_a_write_in_this_process__recompiles_only_what_changed(tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    first = RULESETS.get(tenant)
    full, incremental = _full(), _incremental()
    flag_update(tenant=tenant, key="base", data={"state": "off"}, partial=True)
    second = RULESETS.get(tenant)
    assert (_full() - full, _incremental() - incremental) == (0, 1)
    assert second.flags["uses-few"] is first.flags["uses-few"]  # untouched: the same compiled object
    assert second.flags["base"] is not first.flags["base"]
    _same_as_full_compile(second, tenant)


def test_another_process_catches_up_on_several_writes_with_the_same_answers(tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    other = RulesetCache()
    held = other.get(tenant)
    full, incremental = _full(), _incremental()
    segment_update(tenant=tenant, key="few", data={"included": ["u-3"]}, partial=True)
    flag_archive(tenant=tenant, key="uses-pros")
    make_flag(
        tenant,
        "a-new-one",
        state="on",
        rules=[{"id": "r", "when": {"segment": "few"}, "serve": {"variant": "on"}}],
    )
    segment_delete(tenant=tenant, key="pros")
    flag_update(tenant=tenant, key="base", data={"state": "off"}, partial=True)
    caught_up = other.get(tenant)
    assert (_full() - full, _incremental() - incremental) == (0, 1)
    assert caught_up.flags["uses-few"] is not held.flags["uses-few"]  # it uses the segment that changed
    assert "uses-pros" not in caught_up.flags and "pros" not in caught_up.segments
    assert list(caught_up.flags) == ["a-new-one", "base", "uses-few"]
    _same_as_full_compile(caught_up, tenant)

    segment_update(tenant=tenant, key="few", data={"included": []}, partial=True)
    _same_as_full_compile(other.get(tenant), tenant)


def test_a_change_request_opened__caught_up_without_a_full_compile(tenant, settings):
    """Its event names the current version (another event names it too): not a gap."""
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    make_flag(tenant, "guarded", state="off", protected=True)
    other = RulesetCache()
    other.get(tenant)
    full, incremental = _full(), _incremental()
    flag_update(tenant=tenant, key="base", data={"state": "off"}, partial=True)
    with pytest.raises(ApprovalRequired):
        flag_update(tenant=tenant, key="guarded", data={"state": "on"}, partial=True, actor="user:pm")
    caught_up = other.get(tenant)
    assert (_full() - full, _incremental() - incremental) == (0, 1)
    _same_as_full_compile(caught_up, tenant)


def test_a_kill_switch__another_process_serves_every_killed_flag_off(tenant, settings):
    """Its one event stands for every flag it turned off: the whole tenant is compiled again."""
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    for key in ("base", "uses-few"):
        flag_update(tenant=tenant, key=key, data={"kill_category": "payments"}, partial=True)
    other = RulesetCache()
    other.get(tenant)
    killswitch_engage(tenant=tenant, category="payments", actor="user:oncall", reason="incident")
    caught_up = other.get(tenant)
    answers = evaluate_many(caught_up, USERS[0])
    assert (answers["base"].reason, answers["uses-few"].reason) == ("OFF", "OFF")
    _same_as_full_compile(caught_up, tenant)


def test_a_gap_in_the_outbox__compiles_the_whole_tenant(tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    other = RulesetCache()
    other.get(tenant)
    flag_update(tenant=tenant, key="base", data={"state": "off"}, partial=True)
    flag_update(tenant=tenant, key="uses-few", data={"state": "off"}, partial=True)
    tenant.refresh_from_db()
    # The event of the first of the two versions is gone (pruned, say): the process cannot know what it changed.
    ChangeEvent.all_tenants.filter(tenant=tenant, ruleset_version=tenant.ruleset_version - 1).delete()
    full, incremental = _full(), _incremental()
    ruleset = other.get(tenant)
    assert (_full() - full, _incremental() - incremental) == (1, 0)
    assert ruleset.flags["base"].is_off and ruleset.flags["uses-few"].is_off
    _same_as_full_compile(ruleset, tenant)


def test_a_ruleset_that_left_invalid_definitions_out__is_never_caught_up_incrementally(tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 0
    _seed(tenant)
    from django.db import connection

    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:  # a row an older version let through
        cursor.execute(
            f'UPDATE segments_segment SET "when" = %s{cast} WHERE key = %s',
            ['{"attr": "plan", "op": "no-such-operator", "value": 1}', "pros"],
        )
    assert "uses-pros" not in RULESETS.get(tenant).flags
    full, incremental = _full(), _incremental()
    segment_update(
        tenant=tenant, key="pros", data={"when": {"attr": "plan", "op": "eq", "value": "free"}}, partial=True
    )
    ruleset = RULESETS.get(tenant)
    assert (_full() - full, _incremental() - incremental) == (1, 0)
    assert "uses-pros" in ruleset.flags  # valid again: only a full compile could bring it back
    _same_as_full_compile(ruleset, tenant)


def test_the_cap__drops_the_least_recently_used_tenant_and_compiles_it_again_on_demand(settings):
    settings.RULESET_CHECK_INTERVAL = 0
    settings.RULESET_CACHE_MAX_FLAGS = 5
    first, second, third = (TenantFactory() for _ in range(3))
    for tenant in (first, second, third):
        make_flag(tenant, "a")
        make_flag(tenant, "b")
    cache = RulesetCache()
    evictions = metrics.CACHE_EVICTIONS._value.get()
    cache.get(first)
    cache.get(second)
    assert cache.compiled_flags == 4
    cache.get(first)  # used again: `second` is now the least recently used
    cache.get(third)
    assert metrics.CACHE_EVICTIONS._value.get() - evictions == 1
    assert (cache.is_warm(first.pk), cache.is_warm(second.pk), cache.is_warm(third.pk)) == (True, False, True)
    assert cache.compiled_flags == 4
    full = _full()
    assert list(cache.get(second).flags) == ["a", "b"]  # compiled again on demand
    assert _full() - full == 1
    assert not cache.is_warm(first.pk) and cache.compiled_flags == 4


def test_the_cap__keeps_a_tenant_larger_than_the_cap_alone(tenant, settings):
    settings.RULESET_CACHE_MAX_FLAGS = 1
    make_flag(tenant, "a")
    make_flag(tenant, "b")
    cache = RulesetCache()
    assert list(cache.get(tenant).flags) == ["a", "b"]
    assert cache.is_warm(tenant.pk)
