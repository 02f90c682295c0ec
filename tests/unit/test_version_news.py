"""Ruleset versions announced over Redis pub/sub (`evaluation.version_news`): another process learns of
a write at once, not at its next interval check. Real Redis, real pub/sub."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from evaluation.cache import RulesetCache
from evaluation.version_news import parse
from flags.services import flag_update
from tenancy.models import Tenant
from tests.factories import make_flag

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def shared_redis() -> Iterator[None]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    caches = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}
    }
    with override_settings(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, CACHES=caches):
        yield
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.django_db(transaction=True)
def test_a_write__another_process_serves_it_long_before_its_interval_check(shared_redis, tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 3600  # without the announcement it would not look for an hour
    make_flag(tenant, "banner", state="on", default={"variant": "on"})
    other = RulesetCache()  # another process
    try:
        other.get(tenant)  # starts its listener
        assert other.news.subscribed.wait(5), "the listener subscribed"
        before = other.get(tenant).version  # checked again after subscribing; now trusted for an hour

        flag_update(tenant=tenant, key="banner", data={"state": "off"}, partial=True)

        version = str(Tenant.objects.get(pk=tenant.pk).ruleset_version)
        assert version != before
        deadline = time.monotonic() + 5
        while other.get(tenant).version != version and time.monotonic() < deadline:
            time.sleep(0.01)
        assert other.get(tenant).version == version
    finally:
        other.news.stop()


@pytest.mark.django_db(transaction=True)
def test_an_announcement_of_a_version_already_held__changes_nothing(shared_redis, tenant, settings):
    settings.RULESET_CHECK_INTERVAL = 3600
    make_flag(tenant, "banner", state="on", default={"variant": "on"})
    cache = RulesetCache()
    held = cache.get(tenant)
    entry = cache._entries[tenant.pk]
    checked = entry.checked_at

    cache.heard(tenant.pk, int(held.version))
    cache.heard(tenant.pk + 1, int(held.version) + 1)  # another tenant's

    assert entry.checked_at == checked
    cache.heard(tenant.pk, int(held.version) + 1)
    assert entry.checked_at == float("-inf")


@pytest.mark.parametrize(
    ("data", "parsed"),
    [
        (b"12:345", (12, 345)),
        ("7:8", (7, 8)),
        (b"12", None),
        (b"12:", None),
        (b":5", None),
        (b"-1:5", None),
        (b"1:5:6", None),
        (b"\xff\xfe:1", None),
        (b"1" * 20 + b":1", None),
        (b"\xd9\xa3:1", None),
        ("\u0663:1", None),  # an Arabic-Indic digit: isdigit() says yes to it
    ],
)
def test_parse__only_two_plain_decimal_numbers(data, parsed):
    assert parse(data) == parsed
