"""The OpenFeature Remote Evaluation Protocol (api.md, OFREP): one flag, or every live flag, for a context.

The answers come from the one evaluation service (`evaluation.services`), in OpenFeature's words
(`flagsvc_sdk.engine.openfeature`, shared with the SDK's provider). OFREP's own errors (400 with
`PARSE_ERROR`, `INVALID_CONTEXT` or `TARGETING_KEY_MISSING`; 404 `FLAG_NOT_FOUND`) are
`OfrepProblem`s, rendered in OFREP's shape because OFREP clients parse it; everything else (401, 403,
406, 413, 429, 503) keeps the `/v1` error shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine import CompiledFlag, ValidationFailed, validate_user
from flagsvc_sdk.engine.openfeature import openfeature_metadata, openfeature_reason

from evaluation import services
from evaluation.cache import RULESETS
from kernel.errors import FlagNotFound
from kernel.json_input import NotJson, parse_json
from tenancy.models import Tenant

TARGETING_KEY = "targetingKey"
_JSON_TYPES = ("application/json",)
_UTF8 = ("utf-8", "utf8")


class OfrepProblem(Exception):
    """An OFREP error: `{"key"?, "errorCode", "errorDetails"}` with its status."""

    def __init__(self, status: int, error_code: str, details: str, *, key: str | None = None) -> None:
        super().__init__(details)
        self.status = status
        self.error_code = error_code
        self.details = details
        self.key = key

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {} if self.key is None else {"key": self.key}
        body.update({"errorCode": self.error_code, "errorDetails": self.details})
        return body


def read_body(
    raw: bytes, content_type: str, content_params: dict[str, str], *, key: str | None = None
) -> dict[str, Any]:
    """The request's JSON object, read by the one JSON reader; no body at all is `{}` (no context).

    `key` is the flag's, for the single-flag route: its errors name it (OFREP requires `key` there).
    """
    try:
        return _read_body(raw, content_type, content_params)
    except OfrepProblem as problem:
        problem.key = key
        raise


def _read_body(raw: bytes, content_type: str, content_params: dict[str, str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    charset = content_params.get("charset", "utf-8").lower()
    if content_type not in _JSON_TYPES or charset not in _UTF8:
        raise OfrepProblem(400, "PARSE_ERROR", "Send the body as application/json in UTF-8.")
    try:
        body = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OfrepProblem(400, "PARSE_ERROR", "The body is not UTF-8 text.") from None
    except NotJson as exc:
        raise OfrepProblem(400, "PARSE_ERROR", f"The body is not valid JSON: {exc}") from None
    except ValidationFailed as exc:
        raise OfrepProblem(400, "INVALID_CONTEXT", _describe(exc, prefix="body")) from None
    if not isinstance(body, dict):
        raise OfrepProblem(400, "PARSE_ERROR", 'The body must be a JSON object: {"context": {...}}.')
    return body


def _describe(exc: ValidationFailed, *, prefix: str) -> str:
    """The first few problems, with the engine's `user` paths put in OFREP's words."""
    parts = []
    for field, messages in list(exc.fields.items())[:3]:
        name = field.removeprefix("body.").replace("user.attributes.", "context.")
        name = name.replace("user.id", f"context.{TARGETING_KEY}")
        name = name if name.startswith(("context", "body")) else f"{prefix}.{name}".rstrip(".")
        parts.append(f"{name}: {'; '.join(messages)}")
    return "; ".join(parts) or "The context is invalid."


def context_user(body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """The evaluation user of an OFREP context: `targetingKey` is its id, every other field an attribute."""
    context = body.get("context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise OfrepProblem(400, "INVALID_CONTEXT", "`context` must be a JSON object.", key=key)
    targeting_key = context.get(TARGETING_KEY)
    if targeting_key is None or targeting_key == "":
        raise OfrepProblem(
            400,
            "TARGETING_KEY_MISSING",
            f"Send the user's id as context.{TARGETING_KEY}: every flag is evaluated for one user.",
            key=key,
        )
    if not isinstance(targeting_key, str):
        raise OfrepProblem(400, "INVALID_CONTEXT", f"context.{TARGETING_KEY} must be a string.", key=key)
    user = {"id": targeting_key, "attributes": {k: v for k, v in context.items() if k != TARGETING_KEY}}
    try:
        return validate_user(user)
    except ValidationFailed as exc:
        raise OfrepProblem(400, "INVALID_CONTEXT", _describe(exc, prefix="context"), key=key) from None


def _success(flags: Mapping[str, CompiledFlag], key: str, answer: dict[str, Any]) -> dict[str, Any]:
    flag = flags.get(key)
    return {
        "key": key,
        "value": answer["value"],
        "variant": answer["variant"],
        "reason": openfeature_reason(answer["reason"], flag),
        "metadata": openfeature_metadata(
            answer["reason"], answer.get("rule_id"), answer.get("details") or {}, answer.get("error_code")
        ),
    }


def ofrep_evaluate_flag(*, tenant: Tenant, key: str, body: dict[str, Any]) -> dict[str, Any]:
    user = context_user(body, key)
    try:
        answer = services.evaluate_one(tenant=tenant, flag_key=key, user=user)
    except FlagNotFound:
        raise OfrepProblem(404, "FLAG_NOT_FOUND", f"No live flag {key!r} in this tenant.", key=key) from None
    return _success(RULESETS.get(tenant).flags, key, answer)


def ofrep_evaluate_flags(*, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    user = context_user(body)
    answers = services.evaluate_bulk(tenant=tenant, user=user)
    flags = RULESETS.get(tenant).flags
    return {"flags": [_success(flags, key, answer) for key, answer in sorted(answers["flags"].items())]}


def bulk_etag(document: dict[str, Any]) -> str:
    """A strong `ETag` for a bulk answer: the hash of its canonical JSON, so it changes exactly when
    the answer does (a change of the ruleset that does not change this context's answers keeps it)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32] + '"'
