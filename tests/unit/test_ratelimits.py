"""The shared rate-limit bucket (tenancy.ratelimits): one row per bucket, real database, explicit clock."""

from __future__ import annotations

import pytest

from tenancy.models import RateLimitBucket
from tenancy.ratelimits import rate_limit_hit

pytestmark = pytest.mark.django_db

WINDOW = 60
T0 = 1_800_000_000.0


def test_rate_limit__a_burst_of_the_limit__allowed_then_refused_with_retry_after():
    decisions = [rate_limit_hit("b", 3, WINDOW, now=T0 + n * 0.1) for n in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 20, "one attempt every window/limit seconds after a burst"


def test_rate_limit__buckets__count_apart():
    for n in range(3):
        rate_limit_hit("a", 3, WINDOW, now=T0 + n)

    assert rate_limit_hit("b", 3, WINDOW, now=T0 + 5).allowed
    assert not rate_limit_hit("a", 3, WINDOW, now=T0 + 5).allowed


def test_rate_limit__steady_attempts__at_most_the_limit_per_window_plus_the_burst():
    allowed = sum(rate_limit_hit("b", 6, WINDOW, now=T0 + n).allowed for n in range(3 * WINDOW))

    # 6 at once, then one every 10 s: over three windows 6 + 17, never the 2x of a fixed window's edge.
    assert allowed == 6 + 17


def test_rate_limit__after_retry_after__allowed_and_not_a_second_earlier():
    for n in range(3):
        rate_limit_hit("b", 3, WINDOW, now=T0 + n)
    refused = rate_limit_hit("b", 3, WINDOW, now=T0 + 5)
    assert not refused.allowed

    assert not rate_limit_hit("b", 3, WINDOW, now=T0 + 5 + refused.retry_after - 1).allowed
    assert rate_limit_hit("b", 3, WINDOW, now=T0 + 5 + refused.retry_after).allowed


def test_rate_limit__refused_attempts__do_not_push_the_retry_later():
    for _ in range(3):
        rate_limit_hit("b", 3, WINDOW, now=T0)
    first = rate_limit_hit("b", 3, WINDOW, now=T0 + 1)
    for n in range(50):
        rate_limit_hit("b", 3, WINDOW, now=T0 + 1 + n * 0.01)

    assert rate_limit_hit("b", 3, WINDOW, now=T0 + 1 + first.retry_after).allowed


def test_rate_limit__idle_for_a_window__allows_a_full_burst_again():
    for n in range(4):
        rate_limit_hit("b", 3, WINDOW, now=T0 + n)

    assert all(rate_limit_hit("b", 3, WINDOW, now=T0 + 2 * WINDOW + n * 0.1).allowed for n in range(3))
    assert RateLimitBucket.objects.count() == 1, "one row per bucket, whatever the number of attempts"


def test_rate_limit__prune__deletes_only_buckets_already_empty(monkeypatch):
    monkeypatch.setattr("tenancy.ratelimits._PRUNE_ONE_IN", 1)
    rate_limit_hit("idle", 3, WINDOW, now=T0)  # empty again at T0 + 20
    rate_limit_hit("busy", 3, WINDOW, now=T0 + 25)

    rate_limit_hit("other", 3, WINDOW, now=T0 + 30)

    assert sorted(RateLimitBucket.objects.values_list("key", flat=True)) == ["busy", "other"]
