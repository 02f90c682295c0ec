"""The one `now()` of rollouts: plan validation (steps in the past) and the scheduler read it.

Tests swap it (`frozen_at`) instead of sleeping; the worker passes its own injectable clock's reading to
the scheduler, which uses that same reading for every decision of a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

Clock = Callable[[], datetime]

_clock: Clock = timezone.now


def now() -> datetime:
    return _clock()


@contextmanager
def using_clock(clock: Clock) -> Iterator[None]:
    """Read time from `clock` inside the block (tests; never in production code)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous
