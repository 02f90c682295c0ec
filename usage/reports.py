"""An SDK's usage report (`POST /v1/usage`, api.md, Usage and lifecycle), checked field by field.

`{"batch_id": "<unique>", "counts": [{"flag_key", "variant", "reason", "hour": "<ISO hour>", "n"}]}`:
at most MAX_COUNTS entries; `hour` the start of a UTC hour within USAGE_RETENTION_DAYS and not past
the current hour (or the next, when it starts within CLOCK_SKEW); `n` a whole number from 1 to MAX_N. Errors name the field's path (`counts[3].hour`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from flagsvc_sdk.engine.results import REASONS as ENGINE_REASONS

from kernel.errors import Invalid
from usage.services import Count, hour_of

MAX_COUNTS = 10_000
MAX_N = 1_000_000_000
MAX_KEY = 128
CLOCK_SKEW = timedelta(minutes=5)
"""An SDK whose clock runs a little ahead may name the hour that starts within this much of now: an SDK
counts in the hour its own clock reads, and one refused entry refuses its whole batch."""
REASONS = frozenset(ENGINE_REASONS)


def _text(value: Any, *, allow_empty: bool = False) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_KEY or (not value and not allow_empty):
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return None
    return value


def parse_report(body: dict[str, Any], *, now: datetime) -> tuple[str, list[Count]]:
    """The batch id and its counts; `Invalid` naming every bad field otherwise."""
    errors: dict[str, list[str]] = {}
    batch_id = _text(body.get("batch_id"))
    if batch_id is None:
        errors["batch_id"] = [f"A unique id for this batch: 1-{MAX_KEY} printable characters."]
    raw_counts = body.get("counts")
    if not isinstance(raw_counts, list):
        errors["counts"] = ["A list of {flag_key, variant, reason, hour, n}."]
        raise Invalid(errors)
    if len(raw_counts) > MAX_COUNTS:
        errors["counts"] = [f"At most {MAX_COUNTS} entries per batch; send several batches."]
        raise Invalid(errors)
    current = hour_of(now + CLOCK_SKEW)
    oldest = hour_of(now) - timedelta(days=settings.USAGE_RETENTION_DAYS)
    counts: list[Count] = []
    for index, entry in enumerate(raw_counts):
        count = _count(entry, f"counts[{index}]", errors, oldest=oldest, current=current, now=now)
        if count is not None:
            counts.append(count)
    if errors or batch_id is None:
        raise Invalid(errors)
    return batch_id, counts


def _count(
    entry: Any, at: str, errors: dict[str, list[str]], *, oldest: datetime, current: datetime, now: datetime
) -> Count | None:
    """One entry of `counts`, or None with its problems added to `errors`."""
    if not isinstance(entry, dict):
        errors[at] = ["An object {flag_key, variant, reason, hour, n}."]
        return None
    problems: dict[str, list[str]] = {}
    flag_key = _text(entry.get("flag_key"))
    if flag_key is None:
        problems[f"{at}.flag_key"] = [f"A flag key: 1-{MAX_KEY} printable characters."]
    raw_variant = entry.get("variant")
    variant = "" if raw_variant is None else _text(raw_variant)
    if variant is None:
        problems[f"{at}.variant"] = [f"The served variant's key (at most {MAX_KEY} characters), or null."]
    reason = entry.get("reason")
    if not isinstance(reason, str) or reason not in REASONS:
        problems[f"{at}.reason"] = [f"One of {', '.join(sorted(REASONS))}."]
    hour = _hour(entry.get("hour"))
    if hour is None:
        problems[f"{at}.hour"] = ["The start of a UTC hour in ISO 8601, e.g. 2026-12-01T10:00:00Z."]
    elif not oldest <= hour <= current:
        problems[f"{at}.hour"] = [
            f"Within the last {settings.USAGE_RETENTION_DAYS:g} days and not in the future."
        ]
    n = entry.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        problems[f"{at}.n"] = [f"A whole number from 1 to {MAX_N}."]
    errors.update(problems)
    if problems or flag_key is None or variant is None or hour is None or not isinstance(n, int):
        return None
    return Count(flag_key, variant, str(reason), hour, n, min(hour + timedelta(hours=1), now))


def _hour(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.minute or moment.second or moment.microsecond:
        return None
    return hour_of(moment)
