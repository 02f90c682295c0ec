"""What an evaluation answers (``api.md`` "Evaluation"; reasons from ``rules.md`` "Order of
evaluation").

Everything about an answer except the user's bucket is known when a flag compiles, so each possible
answer is an ``Outcome`` built once; an evaluation allocates only the small ``EvaluationResult``
that pairs an outcome with the bucket, and builds ``details`` when someone reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flagsvc_sdk.engine.values import copy_json

OFF: Final = "OFF"
PREREQUISITE_FAILED: Final = "PREREQUISITE_FAILED"
TARGET_MATCH: Final = "TARGET_MATCH"
RULE_MATCH: Final = "RULE_MATCH"
DEFAULT: Final = "DEFAULT"
PERCENTAGE_ROLLOUT: Final = "PERCENTAGE_ROLLOUT"
ERROR: Final = "ERROR"
# Every reason an evaluation answers (rules.md), in the order of evaluation: the one list the
# server's schema, metrics and usage reports are checked against.
REASONS: Final = (
    OFF,
    PREREQUISITE_FAILED,
    TARGET_MATCH,
    RULE_MATCH,
    DEFAULT,
    PERCENTAGE_ROLLOUT,
    ERROR,
)

FLAG_NOT_FOUND: Final = "FLAG_NOT_FOUND"
NOT_BUCKETABLE: Final = "NOT_BUCKETABLE"


class Outcome:
    """One possible answer of one flag: variant, value, reason, rule id and fixed details.

    ``details`` is the answer's ``details`` without the bucket, and ``body`` its ``to_dict`` shape
    with a place for ``details``; results copy both and never hand them out.
    """

    __slots__ = (
        "body",
        "copy_value",
        "details",
        "error_code",
        "extra",
        "flag_key",
        "flag_version",
        "reason",
        "rule_id",
        "served",
        "value",
        "variant",
    )

    def __init__(
        self,
        *,
        flag_key: str,
        variant: str | None,
        value: Any,
        reason: str,
        flag_version: int | None,
        rule_id: str | None = None,
        error_code: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.flag_key = flag_key
        self.variant = variant
        self.value = value
        self.reason = reason
        self.rule_id = rule_id
        self.error_code = error_code
        self.flag_version = flag_version
        # How many times the SDK served this answer: a native int the hot path adds one to, which
        # ``flagsvc_sdk.reporting`` reads and diffs (no lock, no tuple, no dict on the hot path).
        self.served: int = 0
        self.extra = dict(extra or {})
        self.copy_value = isinstance(value, dict | list)
        self.details: dict[str, Any] = (
            {} if flag_version is None else {"flag_version": flag_version}
        )
        self.details.update(self.extra)
        self.body: dict[str, Any] = {
            "flag_key": flag_key,
            "variant": variant,
            "value": value,
            "reason": reason,
            "rule_id": rule_id,
            "details": None,
        }
        if error_code is not None:
            self.body["error_code"] = error_code


class EvaluationResult:
    """The answer for one flag and one user.

    ``details`` holds ``bucket`` (unrounded) whenever the user could be bucketed, ``flag_version``
    whenever the flag exists, and ``target`` or ``prerequisite`` for those reasons. A ``json`` value
    is a fresh copy on every read, so changing it cannot change the compiled flag.
    """

    __slots__ = ("_details", "bucket", "outcome")

    def __init__(self, outcome: Outcome, bucket: float | None) -> None:
        self.outcome = outcome
        self.bucket = bucket
        self._details: dict[str, Any] | None = None

    @property
    def flag_key(self) -> str:
        return self.outcome.flag_key

    @property
    def variant(self) -> str | None:
        return self.outcome.variant

    @property
    def value(self) -> Any:
        outcome = self.outcome
        return copy_json(outcome.value) if outcome.copy_value else outcome.value

    @property
    def reason(self) -> str:
        return self.outcome.reason

    @property
    def rule_id(self) -> str | None:
        return self.outcome.rule_id

    @property
    def error_code(self) -> str | None:
        return self.outcome.error_code

    @property
    def trace(self) -> list[dict[str, Any]] | None:
        return None

    @property
    def details(self) -> dict[str, Any]:
        details = self._details
        if details is None:
            bucket = self.bucket
            fixed = self.outcome.details
            details = self._details = (
                fixed.copy() if bucket is None else {"bucket": bucket, **fixed}
            )
        return details

    def to_dict(self) -> dict[str, Any]:
        """The API shape: ``error_code`` only when set, ``trace`` only when traced.

        The server calls this for every evaluation, so it copies a prepared body instead of
        building one, and builds ``details`` the way the ``details`` property does.
        """
        outcome = self.outcome
        body = outcome.body.copy()
        if outcome.copy_value:
            body["value"] = copy_json(outcome.value)
        details = self._details
        if details is None:
            bucket = self.bucket
            fixed = outcome.details
            details = self._details = (
                fixed.copy() if bucket is None else {"bucket": bucket, **fixed}
            )
        body["details"] = details
        return body

    def __repr__(self) -> str:
        return (
            f"EvaluationResult(flag_key={self.flag_key!r}, variant={self.variant!r}, "
            f"reason={self.reason!r}, rule_id={self.rule_id!r}, details={self.details!r})"
        )


class TracedEvaluationResult(EvaluationResult):
    """An ``EvaluationResult`` with the steps that led to it (``api.md`` "Evaluation", preview)."""

    __slots__ = ("_trace",)

    def __init__(self, outcome: Outcome, bucket: float | None, trace: list[dict[str, Any]]) -> None:
        super().__init__(outcome, bucket)
        self._trace = trace

    @property
    def trace(self) -> list[dict[str, Any]]:
        return self._trace

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["trace"] = self._trace
        return body


def not_found(flag_key: str) -> EvaluationResult:
    """Unknown or archived flag: no variant, reason ``ERROR``, ``error_code`` ``FLAG_NOT_FOUND``."""
    return error_result(flag_key, FLAG_NOT_FOUND)


def error_result(flag_key: str, error_code: str, value: Any = None) -> EvaluationResult:
    """No variant served: reason ``ERROR``, this ``error_code``, and ``value`` (an SDK passes the
    caller's default; the server ``None``).
    """
    outcome = Outcome(
        flag_key=flag_key,
        variant=None,
        value=value,
        reason=ERROR,
        flag_version=None,
        error_code=error_code,
    )
    return EvaluationResult(outcome, None)
