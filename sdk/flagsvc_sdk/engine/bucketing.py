"""Bucketing and weighted choice, exactly as ``rules.md`` "Bucketing (normative)" states them.

Another SDK must reproduce these numbers bit for bit; ``tests/vectors/bucketing.json`` pins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Generic, TypeVar

import mmh3

from flagsvc_sdk.engine.values import is_utf8

_SCALE: Final = 4294967296
"""``2**32``: ``hash / 2**32`` of an unsigned 32-bit hash is exact in a double and lies in [0, 1).
"""
_hash: Final = mmh3.hash  # Final: compiled, a static instead of a module-dict lookup

Choice = TypeVar("Choice")


def hash_input(tenant: str, flag_key: str, bucket_value: str) -> str:
    """``f"{tenant}:{flag_key}:{bucket_value}"``, e.g. ``acme:checkout-redesign:u-42``."""
    return f"{tenant}:{flag_key}:{bucket_value}"


def bucket_of(text: str) -> float:
    """The bucket formula, and its only implementation: ``mmh3.hash(text, seed=0, signed=False) /
    2**32``, in [0, 1).

    MurmurHash3 x86 32-bit over the UTF-8 bytes of a ``hash_input``. The caller has checked
    ``is_utf8(text)``: the ``mmh3`` extension crashes the process on a lone surrogate.
    """
    return _hash(text, 0, False) / _SCALE


def bucket(tenant: str, flag_key: str, bucket_value: str) -> float:
    """``bucket_of(f"{tenant}:{flag_key}:{bucket_value}")``, the bucket of rules.md "Bucketing".

    Raises ``ValueError`` for text that is not valid UTF-8 (a lone surrogate).
    """
    text = hash_input(tenant, flag_key, bucket_value)
    if not is_utf8(text):
        raise ValueError("bucket input must be valid Unicode text (it contains a lone surrogate)")
    return bucket_of(text)


def thresholds(weights: Sequence[float]) -> tuple[float, ...]:
    """``cum / total`` after each entry, in IEEE-754 doubles and list order, as ``rules.md`` walks
    it.

    The sums are plain left-to-right additions (not ``math.fsum`` or a compensated ``sum``), so
    every language gets the same doubles; the last threshold is exactly ``1.0``.
    """
    total = 0.0
    for weight in weights:
        total += float(weight)
    if not total > 0.0 or total == float("inf"):
        raise ValueError("a distribution needs weights with a positive, finite total")
    cumulative = 0.0
    shares: list[float] = []
    for weight in weights:
        cumulative += float(weight)
        shares.append(cumulative / total)
    return tuple(shares)


def pick_index(shares: tuple[float, ...], position: float) -> int:
    """The index of the first share strictly greater than ``position``: ``bisect_right``'s answer.

    Entries of weight 0 repeat the previous share and are skipped. A loop, not ``bisect_right``:
    splits have a handful of entries, and compiled (ADR 0006) the loop costs less than the call.
    """
    index = 0
    for share in shares:
        if position < share:
            return index
        index += 1
    return index


class Distribution(Generic[Choice]):
    """Weighted choices: the first entry whose cumulative share exceeds the bucket wins."""

    __slots__ = ("choices", "shares")

    def __init__(self, weights: Sequence[float], choices: Sequence[Choice]) -> None:
        if len(weights) != len(choices):
            raise ValueError("one weight per choice")
        self.shares = thresholds(weights)
        self.choices = tuple(choices)

    def pick(self, position: float) -> Choice:
        return self.choices[pick_index(self.shares, position)]
