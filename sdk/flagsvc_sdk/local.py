"""The typed calls of ``FlagClient`` (``bool_value`` and the others): the SDK's hot path.

Compiled with the engine (``setup.py``, ADR 0006), so that a call is one call into native code: the
user's quick check (``values.user_parts``, the quick yes of ``validate_user``), the flag lookup, the
engine's ``walk`` (its outcome only: no result object is built) and a type test, with no Python
frame in between. Every typed call goes through ``_outcome``: the one place where a per-call hook
(a usage counter) belongs. Anything unusual (no snapshot
yet, a user that needs the full check, an unknown flag, a value of another type, an exception)
goes to ``miss``, which the client sets: it finds the reason, counts it and answers the default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flagsvc_sdk.engine.compiled import CompiledRuleset
from flagsvc_sdk.engine.evaluation import walk
from flagsvc_sdk.engine.results import Outcome
from flagsvc_sdk.engine.values import copy_json, user_parts

Miss = Callable[[Any, Any, Any, str], Any]
"""``miss(flag_key, user, default, kind)``: the default, after finding out and counting why."""


def _no_miss(flag_key: Any, user: Any, default: Any, kind: str) -> Any:
    return default


class LocalFlags:
    """The ruleset serving now (``None`` before the first snapshot) and the typed calls on it.

    ``ruleset`` is replaced whole by the client's background thread; a call reads it once.
    """

    def __init__(self) -> None:
        self.ruleset: CompiledRuleset | None = None
        self.miss: Miss = _no_miss

    def _outcome(self, flag_key: Any, user: Any) -> Outcome | None:
        """The outcome served, or ``None`` when anything is unusual (``miss`` then decides)."""
        ruleset = self.ruleset
        if ruleset is None:
            return None
        user_id, attributes = user_parts(user)
        if not user_id:
            return None
        flags = ruleset.flags
        try:
            flag = flags[flag_key]
        except (KeyError, TypeError):
            return None
        try:
            # user_parts checked the id is valid UTF-8: it can be hashed.
            outcome = walk(flags, flag, user_id, attributes, True, None, 0, None)[0]
        except Exception:
            return None
        outcome.served += 1  # usage counting: one native add, read by flagsvc_sdk.reporting
        return outcome

    # Every argument and answer is ``Any``: compiled, a declared type is checked at the call, and a
    # caller's default of another type must come back as it went in, never as a TypeError.

    def bool_value(self, flag_key: Any, user: Any, default: Any) -> Any:
        outcome = self._outcome(flag_key, user)
        if outcome is not None:
            value = outcome.value
            if isinstance(value, bool):
                return value
        return self.miss(flag_key, user, default, "boolean")

    def string_value(self, flag_key: Any, user: Any, default: Any) -> Any:
        outcome = self._outcome(flag_key, user)
        if outcome is not None:
            value = outcome.value
            if isinstance(value, str):
                return value
        return self.miss(flag_key, user, default, "string")

    def number_value(self, flag_key: Any, user: Any, default: Any) -> Any:
        outcome = self._outcome(flag_key, user)
        if outcome is not None:
            value = outcome.value
            if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
                return value
        return self.miss(flag_key, user, default, "number")

    def json_value(self, flag_key: Any, user: Any, default: Any) -> Any:
        outcome = self._outcome(flag_key, user)
        if outcome is not None:
            value = outcome.value
            if isinstance(value, dict | list):
                return copy_json(value)  # a fresh copy: the compiled value is never handed out
        return self.miss(flag_key, user, default, "json")
