"""The Redis mirror of the ruleset version (ADR 0002): it expires, so a lost publish heals."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from flagsvc_sdk.engine import evaluate

from evaluation import cache as ruleset_cache
from evaluation.cache import RULESETS
from flags.services import flag_update
from tenancy.models import Tenant
from tests.factories import make_flag

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reason(tenant: Tenant) -> str:
    return evaluate(RULESETS.get(tenant), "a", {"id": "u-1", "attributes": {}}).reason


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def with_redis() -> Iterator[None]:
    if not _redis_available():
        pytest.fail(f"Redis is required and not reachable at {REDIS_URL} (set TEST_REDIS_URL); never skipped")
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        }
    }
    with override_settings(REDIS_URL=REDIS_URL, CACHES=caches):
        yield
        cache.clear()


def test_redis_mirror__every_publish_expires(with_redis, tenant):
    make_flag(tenant, "a")
    ttl = cache.ttl(f"ruleset-version:{tenant.pk}")
    assert 0 < ttl <= ruleset_cache.SHARED_VERSION_TTL


def test_redis_mirror__a_lost_publish__is_healed_from_the_database_within_the_ttl(
    with_redis, tenant, monkeypatch
):
    monkeypatch.setattr(ruleset_cache, "SHARED_VERSION_TTL", 1)
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    assert reason(tenant) == "DEFAULT"
    stale = Tenant.objects.get(pk=tenant.pk).ruleset_version

    flag_update(tenant=tenant, key="a", data={"state": "off"}, partial=True)
    ruleset_cache._publish(tenant.pk, stale)  # Redis holds what it had before: it missed that bump
    assert Tenant.objects.get(pk=tenant.pk).ruleset_version > stale
    assert reason(tenant) != "OFF", "Redis says nothing changed"

    time.sleep(1.2)

    assert reason(tenant) == "OFF", "the expired mirror was read again from the database"


def test_redis_mirror__a_reader_does_not_overwrite_a_newer_published_version(with_redis, tenant):
    make_flag(tenant, "a")
    key = f"ruleset-version:{tenant.pk}"
    current = Tenant.objects.get(pk=tenant.pk).ruleset_version
    cache.delete(key)
    cache.set(key, current + 5, timeout=30)  # a bump published after this reader's database read
    ruleset_cache._publish(tenant.pk, current, only_if_absent=True)
    assert cache.get(key) == current + 5


def test_redis_mirror__behind_the_process_s_own_ruleset__is_not_asked_again_on_every_request(
    with_redis, tenant
):
    """Redis may hold an older version than a process compiled (two publishes landing in the wrong
    order, a catch-up that read past the version asked for): the process's ruleset is current, and it
    checks again after `RULESET_CHECK_INTERVAL`, not on every request (each then read Redis, and the
    database whenever the key was gone)."""
    make_flag(tenant, "a", state="on", default={"variant": "on"})
    assert reason(tenant) == "DEFAULT"
    current = Tenant.objects.get(pk=tenant.pk).ruleset_version
    ruleset_cache._publish(tenant.pk, current - 1)  # Redis is behind
    RULESETS.forget(tenant.pk)  # the next evaluation checks
    with override_settings(RULESET_CHECK_INTERVAL=60):
        assert reason(tenant) == "DEFAULT"  # checked: Redis says older, its own ruleset stays
        cache.delete(f"ruleset-version:{tenant.pk}")  # a check now would have to ask the database
        with CaptureQueriesContext(connection) as queries:
            for _ in range(5):
                assert reason(tenant) == "DEFAULT"
    assert [query["sql"] for query in queries.captured_queries] == []
