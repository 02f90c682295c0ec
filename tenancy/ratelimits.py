"""Rate limits shared by every process and host, counted in the database (no Redis needed).

The generic cell rate algorithm (a leaky bucket kept as one number): a limit of N per window lets a
burst of N through at once, then one attempt every window/N. A bucket stores the moment it would be
empty again (`drained_at`); an attempt adds window/N to it and is allowed while that stays within
one window from now. There are no window boundaries to burst across and `Retry-After` is exact.

One statement decides and records the attempt (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, on
PostgreSQL and SQLite alike), so two processes can never both take the last slot: there is no
read-then-write to race. A refused attempt changes nothing, so a client that waits `Retry-After`
seconds is allowed.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from django.db import connection

from tenancy.models import RateLimitBucket

# Buckets already empty are deleted now and then (on one attempt in this many).
_PRUNE_ONE_IN = 500


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int
    """Whole seconds until an attempt would be allowed (0 when this one was)."""


def rate_limit_hit(key: str, limit: int, window_seconds: float, now: float | None = None) -> RateDecision:
    """Record one attempt on bucket `key` under `limit` attempts per `window_seconds`; allowed or not."""
    moment = time.time() if now is None else now
    window = float(window_seconds)
    interval = window / max(1, limit)
    table = connection.ops.quote_name(RateLimitBucket._meta.db_table)
    # Every SET expression reads the row as it was before this statement.
    drained = (
        f"CASE WHEN {table}.drained_at > %(now)s THEN {table}.drained_at ELSE %(now)s END + %(interval)s"
    )
    fits = f"{drained} <= %(now)s + %(window)s"
    sql = f"""
        INSERT INTO {table} ("key", drained_at, last_refused) VALUES (%(key)s, %(first)s, %(first_refused)s)
        ON CONFLICT ("key") DO UPDATE SET
            drained_at = CASE WHEN {fits} THEN {drained} ELSE {table}.drained_at END,
            last_refused = CASE WHEN {fits} THEN %(no)s ELSE %(yes)s END
        RETURNING drained_at, last_refused
    """  # noqa: S608 (the table name is ours, every value is a parameter)
    params: dict[str, str | float | bool] = {
        "key": key[:255],
        "now": moment,
        "interval": interval,
        "window": window + 1e-6,  # N intervals may add up to a hair over the window in floating point
        "first": moment + interval,
        "first_refused": False,
        "no": False,
        "yes": True,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        drained_at, refused = cursor.fetchone()
        if random.randrange(_PRUNE_ONE_IN) == 0:
            # One statement: the ORM's delete() would load every row to send post_delete signals.
            cursor.execute(f"DELETE FROM {table} WHERE drained_at < %s", [moment])  # noqa: S608
    if not refused:
        return RateDecision(allowed=True, retry_after=0)
    wait = float(drained_at) + interval - window - moment
    return RateDecision(allowed=False, retry_after=max(1, math.ceil(wait)))
