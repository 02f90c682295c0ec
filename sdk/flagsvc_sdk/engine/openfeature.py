"""Our answers in OpenFeature's words (``rules.md`` "Reasons mapped to OpenFeature").

One home for the mapping: the server's OFREP routes and the SDK's OpenFeature provider both call
these, so a flag resolved remotely and locally reports the same reason and metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flagsvc_sdk.engine.compiled import CompiledFlag
from flagsvc_sdk.engine.results import (
    DEFAULT,
    ERROR,
    OFF,
    PERCENTAGE_ROLLOUT,
    PREREQUISITE_FAILED,
    RULE_MATCH,
    TARGET_MATCH,
)

OPENFEATURE_REASONS: Final[Mapping[str, str]] = {
    OFF: "DISABLED",
    TARGET_MATCH: "TARGETING_MATCH",
    RULE_MATCH: "TARGETING_MATCH",
    PERCENTAGE_ROLLOUT: "SPLIT",
    DEFAULT: "DEFAULT",
    PREREQUISITE_FAILED: "DEFAULT",
    ERROR: "ERROR",
}
"""Ours → OpenFeature's; ``DEFAULT`` becomes ``STATIC`` for a static flag (``is_static``)."""

Metadata = dict[str, str | int | float | bool]


def is_static(flag: CompiledFlag) -> bool:
    """Whether the flag gives every user the same answer: no rules, no targets, no split.

    A flag with prerequisites is not static either: its answer follows another flag's, which may
    depend on the user.
    """
    doc = flag.doc
    return (
        not doc["rules"]
        and not doc["targets"]["allow"]
        and not doc["targets"]["deny"]
        and not doc["prerequisites"]
        and flag.default_outcome is not None
    )


def openfeature_reason(reason: str, flag: CompiledFlag | None) -> str:
    """The OpenFeature reason of one of our reasons; ``UNKNOWN`` for a reason we do not have."""
    if reason == DEFAULT and flag is not None and is_static(flag):
        return "STATIC"
    return OPENFEATURE_REASONS.get(reason, "UNKNOWN")


def openfeature_metadata(
    reason: str,
    rule_id: str | None,
    details: Mapping[str, Any],
    error_code: str | None = None,
) -> Metadata:
    """Flag metadata, primitive values only (as OpenFeature requires): our ``reason``, and where
    known ``flag_version``, ``bucket``, ``rule_id``, ``target``, ``prerequisite``, ``error_code``.
    """
    metadata: Metadata = {"reason": reason}
    for name, value in details.items():
        if isinstance(value, str | bool | int | float):
            metadata[name] = value
    if rule_id is not None:
        metadata["rule_id"] = rule_id
    if error_code is not None:
        metadata["error_code"] = error_code
    return metadata
