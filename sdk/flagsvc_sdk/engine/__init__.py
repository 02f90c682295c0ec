"""The pure flag engine: validate → compile → evaluate, exactly as ``rules.md`` describes.

No Django, no I/O, no global state. The server and the SDK import these names and nothing else::

    flag = validate_flag(document, segment_keys=segment_keys, live_flags=live_flags)
    ruleset = compile_ruleset(
        tenant="acme", version="42", flags=[{**flag, "version": 1}], segments=[]
    )
    result = evaluate(ruleset, "checkout-redesign", validate_user({"id": "u-42"}))
    ruleset = recompile(ruleset, version="43", flags=[changed], removed_segments=["beta"])
"""

from flagsvc_sdk.engine import evaluation as _evaluation
from flagsvc_sdk.engine.bucketing import bucket
from flagsvc_sdk.engine.compiled import CompiledFlag, CompiledRuleset, compile_ruleset, recompile
from flagsvc_sdk.engine.errors import (
    DefinitionError,
    InvalidDefinition,
    PayloadTooLarge,
    PrerequisiteCycle,
    ValidationFailed,
)
from flagsvc_sdk.engine.evaluation import evaluate, evaluate_many
from flagsvc_sdk.engine.limits import MAX_JSON_DEPTH, MAX_SAFE_INTEGER
from flagsvc_sdk.engine.results import EvaluationResult, error_result
from flagsvc_sdk.engine.validation import (
    validate_flag,
    validate_json,
    validate_segment,
    validate_user,
)

COMPILED: bool = not _evaluation.__file__.endswith(".py")
"""Whether the hot path runs compiled by mypyc (an installed build) or as plain Python."""

__all__ = [
    "COMPILED",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "CompiledFlag",
    "CompiledRuleset",
    "DefinitionError",
    "EvaluationResult",
    "InvalidDefinition",
    "PayloadTooLarge",
    "PrerequisiteCycle",
    "ValidationFailed",
    "bucket",
    "compile_ruleset",
    "error_result",
    "evaluate",
    "evaluate_many",
    "recompile",
    "validate_flag",
    "validate_json",
    "validate_segment",
    "validate_user",
]
