"""Evaluation use cases: one flag, many flags, and the preview with traces and a change summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from flagsvc_sdk.engine import (
    CompiledRuleset,
    EvaluationResult,
    ValidationFailed,
    evaluate,
    evaluate_many,
    validate_flag,
    validate_user,
)
from flagsvc_sdk.engine.trace_budget import trace_entries_bound

from evaluation import metrics
from evaluation.cache import RULESETS
from evaluation.tracing import evaluate_span
from flags.selectors import flag_get, flag_keys_in, live_flag_graph
from kernel.errors import FlagNotFound, Invalid, TooLarge, Unavailable
from segments.selectors import segment_keys
from tenancy.models import Tenant
from usage.buffer import USAGE
from usage.reports import parse_report
from usage.services import usage_record
from webhooks.exposures import exposures_forward, parse_exposures

MAX_PREVIEW_USERS = 1000
MAX_PREVIEW_TRACE_ENTRIES = 100_000
"""Steps and conditions in all the traces of one preview (users x the flag's trace bound). A trace
entry is about 80 bytes of JSON: some 8 MB, and one to two seconds of one core."""
MAX_PREVIEW_TRACE_BYTES = 8 * 1024 * 1024
"""The traces' size as JSON, counted as they are made: conditions echo values and attributes."""
MAX_BULK_KEYS = 1000
_NOT_FOUND_ENTRY = {"variant": None, "value": None, "reason": "ERROR", "error_code": "FLAG_NOT_FOUND"}
"""A requested key that is unknown or archived, in a bulk answer (api.md, Evaluation)."""


def _user(raw: Any, path: str = "user") -> dict[str, Any]:
    try:
        return validate_user(raw)
    except ValidationFailed as exc:
        raise Invalid({path + key.removeprefix("user"): msgs for key, msgs in exc.fields.items()}) from None


@evaluate_span  # `flag.evaluate` when tracing is on (docs/operations.md, Traces)
def evaluate_one(*, tenant: Tenant, flag_key: Any, user: Any) -> dict[str, Any]:
    if not isinstance(flag_key, str) or not flag_key:
        raise Invalid({"flag_key": ["Name the flag to evaluate."]})
    valid_user = _user(user)
    ruleset = RULESETS.get(tenant)
    started = time.perf_counter()
    result = evaluate(ruleset, flag_key, valid_user)
    metrics.EVALUATE_LATENCY.observe(time.perf_counter() - started)
    if result.error_code == "FLAG_NOT_FOUND":
        raise FlagNotFound(f"No live flag {flag_key!r} in this tenant.", details={"flag_key": flag_key})
    metrics.count_evaluations(result.reason)
    metrics.count_flag_evaluation(tenant.pk, tenant.slug, flag_key, result.rule_id)
    USAGE.add(tenant.pk, flag_key, result.variant, result.reason)
    return result.to_dict()


def bulk_entry(result: EvaluationResult) -> dict[str, Any]:
    """One flag's answer in a bulk evaluation (api.md): the result without its key, and for an unknown
    or archived key exactly `{"variant", "value", "reason", "error_code"}`, no rule and no details."""
    if result.error_code == "FLAG_NOT_FOUND":
        return dict(_NOT_FOUND_ENTRY)
    body = result.to_dict()
    body.pop("flag_key", None)
    return body


def evaluate_bulk(
    *, tenant: Tenant, user: Any, flag_keys: Any = None, record_metrics: bool = True
) -> dict[str, Any]:
    """Every live flag (or those named) for one user. The admin's playground passes
    `record_metrics=False`: a person trying users out is not traffic."""
    if flag_keys is not None:
        if not isinstance(flag_keys, list) or not all(isinstance(k, str) for k in flag_keys):
            raise Invalid({"flag_keys": ["A list of flag keys (strings)."]})
        if len(flag_keys) > MAX_BULK_KEYS:
            raise Invalid({"flag_keys": [f"At most {MAX_BULK_KEYS} keys per request."]})
    valid_user = _user(user)
    ruleset = RULESETS.get(tenant)
    started = time.perf_counter()
    results = evaluate_many(ruleset, valid_user, flag_keys)
    if record_metrics:
        metrics.BULK_LATENCY.observe(time.perf_counter() - started)
    flags: dict[str, Any] = {}
    reasons: Counter[str] = Counter()
    for key, result in results.items():
        reasons[result.reason] += 1
        flags[key] = bulk_entry(result)
    if record_metrics:  # the admin's playground is not traffic: neither metrics nor usage
        for reason, count in reasons.items():
            metrics.count_evaluations(reason, count)
        metrics.count_flag_evaluations(
            tenant.pk,
            tenant.slug,
            ((key, r.rule_id) for key, r in results.items() if r.error_code != "FLAG_NOT_FOUND"),
        )
        USAGE.add_many(
            tenant.pk,
            (
                (key, result.variant, result.reason)
                for key, result in results.items()
                if result.error_code != "FLAG_NOT_FOUND"
            ),
        )
    return {"flags": flags, "ruleset_version": ruleset.version}


def _check_preview_work(ruleset: CompiledRuleset, request: PreviewRequest) -> None:
    """Refuse, before any work, a preview whose traces could hold more than the budget."""
    per_user = trace_entries_bound(ruleset, request.flag_key)
    if per_user * len(request.users) <= MAX_PREVIEW_TRACE_ENTRIES:
        return
    fits = max(1, MAX_PREVIEW_TRACE_ENTRIES // per_user)
    raise Invalid(
        {
            "users": [
                f"A trace of flag {request.flag_key!r} can hold {per_user} steps and conditions "
                f"per user, and a preview at most {MAX_PREVIEW_TRACE_ENTRIES}: send at most "
                f"{fits} users at a time (you sent {len(request.users)}), or preview a flag "
                "with fewer rules and conditions."
            ]
        }
    )


def json_size_at_most(value: Any, budget: int) -> int:
    """About how many bytes ``value`` takes as JSON, counting only until it passes ``budget``.

    Walks the value instead of serialising it: one trace may echo a large attribute in many
    conditions, and serialising it to measure it would build the very string we refuse to build.
    """
    size = 0
    pending = [value]
    while pending and size <= budget:
        item = pending.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)
            for key, child in item.items():
                size += len(str(key))
                pending.append(child)
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            pending.extend(item)
        else:
            size += len(str(item)) if isinstance(item, int | float) else 5
    return size


@dataclass(frozen=True)
class PreviewRequest:
    flag_key: str
    users: list[dict[str, Any]]
    draft: dict[str, Any] | None


def _preview_request(body: dict[str, Any]) -> PreviewRequest:
    draft = body.get("flag")
    if draft is not None and not isinstance(draft, dict):
        raise Invalid({"flag": ["An unsaved flag definition (a JSON object), or leave it out."]})
    flag_key = body.get("flag_key") or (draft or {}).get("key")
    if not isinstance(flag_key, str) or not flag_key:
        raise Invalid({"flag_key": ["Name the flag (flag_key), or send an unsaved definition in `flag`."]})
    raw_users: list[Any] = []
    if body.get("user") is not None:
        raw_users.append(body["user"])
    if body.get("users") is not None:
        if not isinstance(body["users"], list):
            raise Invalid({"users": ["A list of users."]})
        raw_users.extend(body["users"])
    if not raw_users:
        raise Invalid({"user": ["Send a user, or a list of users (up to 1,000)."]})
    if len(raw_users) > MAX_PREVIEW_USERS:
        raise Invalid({"users": [f"At most {MAX_PREVIEW_USERS} users per preview; got {len(raw_users)}."]})
    has_single = body.get("user") is not None
    users = [
        _user(raw, "user" if has_single and i == 0 else f"users[{i - (1 if has_single else 0)}]")
        for i, raw in enumerate(raw_users)
    ]
    return PreviewRequest(flag_key=flag_key, users=users, draft=draft)


def preview(*, tenant: Tenant, body: dict[str, Any], moves: bool = False) -> dict[str, Any]:
    """Traces for each user; with a draft, counts of variants and how many users it would move.

    `moves` (the admin's preview) also counts each move from the stored variant to the draft's
    (`summary.moves`: `[{"from", "to", "count"}]`, most first); the API's answer stays as documented.
    """
    request = _preview_request(body)
    stored_ruleset = RULESETS.get(tenant)
    stored = flag_get(tenant=tenant, key=request.flag_key)
    ruleset: CompiledRuleset = stored_ruleset
    if request.draft is not None:
        draft = {
            k: v
            for k, v in request.draft.items()
            if k not in ("version", "created_at", "updated_at", "archived_at")
        }
        draft.setdefault("key", request.flag_key)
        if draft["key"] != request.flag_key:
            raise Invalid({"flag.key": ["Must equal flag_key."]})
        live = {k: v for k, v in live_flag_graph(tenant=tenant).items() if k != request.flag_key}
        valid = validate_flag(draft, segment_keys=segment_keys(tenant=tenant), live_flags=live)
        ruleset = stored_ruleset.with_flag({**valid, "version": (stored.version + 1) if stored else 1})
    elif stored is None:
        raise FlagNotFound(f"No live flag {request.flag_key!r} in this tenant.")
    _check_preview_work(ruleset, request)
    deadline = time.monotonic() + float(settings.PREVIEW_DEADLINE_SECONDS)
    results: list[dict[str, Any]] = []
    variants: Counter[str] = Counter()
    changed = 0
    moved: Counter[tuple[str, str]] = Counter()
    trace_bytes = 0
    compare = request.draft is not None and stored is not None
    for user in request.users:
        if time.monotonic() >= deadline:
            raise Unavailable(
                f"The preview ran past its {settings.PREVIEW_DEADLINE_SECONDS:g} s deadline after "
                f"{len(results)} of {len(request.users)} users and was stopped; the server is busy: "
                "retry, or send fewer users.",
                details={"deadline_seconds": settings.PREVIEW_DEADLINE_SECONDS},
            )
        result = evaluate(ruleset, request.flag_key, user, trace=True)
        document = {"user_id": user["id"], **result.to_dict()}
        trace_bytes += json_size_at_most(document, MAX_PREVIEW_TRACE_BYTES - trace_bytes)
        if trace_bytes > MAX_PREVIEW_TRACE_BYTES:
            raise TooLarge(
                f"The traces would be over {MAX_PREVIEW_TRACE_BYTES} bytes of JSON after "
                f"{len(results) + 1} of {len(request.users)} users (conditions echo the values "
                "they compare): send fewer users, or users with smaller attributes.",
                details={"field": "users", "limit_bytes": MAX_PREVIEW_TRACE_BYTES},
            )
        results.append(document)
        variants[str(result.variant)] += 1
        if compare:
            before = evaluate(stored_ruleset, request.flag_key, user).variant
            if before != result.variant:
                changed += 1
                moved[(str(before), str(result.variant))] += 1
    summary: dict[str, Any] = {"variants": dict(variants)}
    if compare:
        summary["changed"] = changed
        if moves:
            summary["moves"] = [{"from": a, "to": b, "count": n} for (a, b), n in moved.most_common()]
    return {"results": results, "summary": summary}


def usage_report(*, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Count an SDK's batch (api.md, Usage and lifecycle): only keys of this tenant's flags, live or
    archived, are counted (a client cannot grow the table with made-up keys); the rest are named."""
    batch_id, counts = parse_report(body, now=timezone.now())
    known = flag_keys_in(tenant=tenant, keys={count.flag_key for count in counts})
    ignored = sorted({count.flag_key for count in counts} - known)
    counted = usage_record(
        tenant_id=tenant.pk, batch_id=batch_id, counts=[c for c in counts if c.flag_key in known]
    )
    return {"batch_id": batch_id, "duplicate": not counted, "ignored_flag_keys": ignored}


def exposures_report(*, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Forward an SDK's batch of exposures to the tenant's `flag.exposure` webhooks (README, Exposure
    events): exposures of keys that name no flag of this tenant (live or archived) are dropped and named,
    as `POST /v1/usage` does, so a client cannot send made-up keys to the tenant's receivers."""
    batch_id, exposures = parse_exposures(body, now=timezone.now())
    keys = {exposure.flag_key for exposure in exposures}
    known = flag_keys_in(tenant=tenant, keys=keys)
    kept = [exposure for exposure in exposures if exposure.flag_key in known]
    exposures_forward(tenant=tenant, batch_id=batch_id, exposures=kept)
    return {"batch_id": batch_id, "accepted": len(kept), "ignored_flag_keys": sorted(keys - known)}
