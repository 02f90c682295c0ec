"""``FlagServiceProvider``: an OpenFeature provider (``openfeature-sdk``) that evaluates locally
through ``FlagClient``. Install with ``pip install './sdk[openfeature]'``.

The evaluation context maps to our user as the server's OFREP routes map it: ``targeting_key`` is
the user's id and every attribute is a user attribute. Reasons and metadata come from the engine's
one mapping (``engine.openfeature``), so a flag resolved here and through OFREP reports the same.
Types are strict: a flag that serves another type answers the default with ``TYPE_MISMATCH``; an
integer is an ``int`` (never a ``bool``), a float any JSON number (given as ``float``), an object
a JSON object or array.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from flagsvc_sdk.client import FlagClient
from flagsvc_sdk.engine.openfeature import openfeature_metadata, openfeature_reason

__all__ = ["FlagServiceProvider"]

Value = TypeVar("Value")

_ERROR_CODES = {
    "FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
    "INVALID_CONTEXT": ErrorCode.INVALID_CONTEXT,
    "PROVIDER_NOT_READY": ErrorCode.PROVIDER_NOT_READY,
    "TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "GENERAL": ErrorCode.GENERAL,
}


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _is_object(value: Any) -> bool:
    return type(value) is dict or type(value) is list


class FlagServiceProvider(AbstractProvider):
    """OpenFeature provider over a ``FlagClient`` (given, or made from ``client_options``: the
    client's own arguments). A client it made is closed by ``shutdown``; a given one is not."""

    def __init__(
        self, client: FlagClient | None = None, *, ready_timeout: float = 5.0, **client_options: Any
    ) -> None:
        super().__init__()
        self._owns_client = client is None
        self.client = client if client is not None else FlagClient(**client_options)
        self._ready_timeout = ready_timeout
        self._announced = False
        self.client.on_change(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="flagsvc")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait up to ``ready_timeout`` for the first snapshot; without one the provider is not
        ready (OpenFeature answers defaults) and announces itself ready when a snapshot arrives."""
        if not self.client.wait_until_ready(self._ready_timeout):
            raise ProviderNotReadyError(
                "no snapshot yet from the flag service, the bootstrap file or the cache"
            )
        self._announced = True

    def shutdown(self) -> None:
        if self._owns_client:
            self.client.close()

    def _changed(self, client: FlagClient) -> None:
        details = ProviderEventDetails(message=f"ruleset version {client.ruleset_version}")
        if not self._announced:
            self._announced = True
            self.emit_provider_ready(details)
        else:
            self.emit_provider_configuration_changed(details)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_bool, "boolean")

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_str, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_int, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(
            flag_key, default_value, evaluation_context, _is_number, "number", convert=float
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_object, "object")

    def _resolve(
        self,
        flag_key: str,
        default: Value,
        context: EvaluationContext | None,
        accepts: Callable[[Any], bool],
        kind: str,
        convert: Callable[[Any], Any] | None = None,
    ) -> FlagResolutionDetails[Value]:
        user, problem = context_user(context)
        if problem is not None:
            return _error(default, *problem)
        ruleset = self.client._local.ruleset  # read once: the flag and the answer agree
        result = self.client._evaluate(ruleset, flag_key, user, default)
        if result.variant is None:
            code = _ERROR_CODES.get(result.error_code or "", ErrorCode.GENERAL)
            return _error(default, code, f"{result.error_code}: {flag_key!r}")
        value = result.value
        if not accepts(value):
            self.client._errors["TYPE_MISMATCH"] += 1
            return _error(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} serves {type(value).__name__} values, not {kind}",
            )
        flag = None if ruleset is None else ruleset.flags.get(flag_key)
        return FlagResolutionDetails(
            value=convert(value) if convert is not None else value,
            variant=result.variant,
            reason=openfeature_reason(result.reason, flag),
            flag_metadata=openfeature_metadata(
                result.reason, result.rule_id, result.details, result.error_code
            ),
        )


def context_user(
    context: EvaluationContext | None,
) -> tuple[dict[str, Any], tuple[ErrorCode, str] | None]:
    """Our user of an evaluation context, or the OpenFeature error that says why there is none."""
    if context is None or context.targeting_key is None or context.targeting_key == "":
        return {}, (
            ErrorCode.TARGETING_KEY_MISSING,
            "set the evaluation context's targeting_key to the user's id",
        )
    if not isinstance(context.targeting_key, str):
        return {}, (ErrorCode.INVALID_CONTEXT, "targeting_key must be a string")
    attributes = {
        name: value.isoformat() if isinstance(value, dt.datetime) else value
        for name, value in (context.attributes or {}).items()
    }
    return {"id": context.targeting_key, "attributes": attributes}, None


def _error(default: Value, code: ErrorCode, message: str) -> FlagResolutionDetails[Value]:
    return FlagResolutionDetails(
        value=default, reason=Reason.ERROR, error_code=code, error_message=message
    )
