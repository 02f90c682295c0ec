"""`kernel.redis`: the one way to Redis outside the cache API. An announcement reaches a real subscriber
on this deployment's channel, and one made while Redis is unreachable is logged, never raised (each has
a slower fallback that finds the same news)."""

from __future__ import annotations

import logging
import os
import time
import uuid

import pytest
import redis as redis_py
from django.test import override_settings

from kernel import redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def caches(location: str) -> dict[str, dict[str, object]]:
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location}}


def test_publish__a_subscriber_of_the_prefixed_channel_hears_it() -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    listener = redis_py.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(f"{prefix}:events")
    try:
        with override_settings(REDIS_KEY_PREFIX=prefix, CACHES=caches(REDIS_URL)):
            assert redis.channel("events") == f"{prefix}:events"
            redis.publish(redis.channel("events"), "42", what="a change event")
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = listener.get_message(timeout=0.5)
        assert message is not None and message["data"] == b"42"
    finally:
        listener.close()


def test_publish__redis_unreachable__logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    closed = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with override_settings(CACHES=caches(closed)), caplog.at_level(logging.WARNING, logger="flagsvc.redis"):
        redis.publish(redis.channel("ruleset-versions"), "1:2", what="a ruleset version")
    assert [r.getMessage() for r in caplog.records] == [
        "redis unreachable while announcing a ruleset version"
    ]
