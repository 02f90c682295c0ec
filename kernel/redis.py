"""Redis beyond the cache API, in one place: the default cache's connection and the pub/sub channels.

Every announcement over pub/sub (a new ruleset version, new change events) has a slower fallback that
finds the same news (an interval check, an outbox poll), so `publish` never raises: losing a message
only delays it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger("flagsvc.redis")


def connection() -> Any:
    """The default cache's Redis client (django-redis's pool). Imported when first used: a deployment
    without Redis never imports django_redis."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def channel(name: str) -> str:
    """This deployment's pub/sub channel `name`: `<REDIS_KEY_PREFIX>:<name>`."""
    return f"{settings.REDIS_KEY_PREFIX}:{name}"


def publish(to: str, message: str, *, what: str) -> None:
    """Publish `message` on channel `to`, or log a warning naming `what` was announced when Redis is
    unreachable."""
    try:
        connection().publish(to, message)
    except Exception:
        logger.warning("redis unreachable while announcing %s", what, exc_info=True)
