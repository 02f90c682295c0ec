"""The `flag.evaluate` span around the one evaluation door (issue 15, item 7; docs/operations.md, Traces)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from evaluation.cache import RULESETS
from kernel import tracing
from tenancy.models import Tenant

EvaluateOne = TypeVar("EvaluateOne", bound=Callable[..., dict[str, Any]])


def evaluate_span(evaluate_one: EvaluateOne) -> EvaluateOne:
    """`flag.evaluate` with the flag key, the tenant's slug, the reason and whether the compiled ruleset
    was already in memory (`flagsvc.cache_hit`: this process served the ruleset it held, without
    compiling). With tracing off, one attribute read and a call."""

    @functools.wraps(evaluate_one)
    def traced(*, tenant: Tenant, flag_key: Any, user: Any) -> dict[str, Any]:
        tracer = tracing.TRACER
        if tracer is None:
            return evaluate_one(tenant=tenant, flag_key=flag_key, user=user)
        with tracer.start_as_current_span("flag.evaluate") as span:
            key = flag_key[: tracing.MAX_KEY_CHARS] if isinstance(flag_key, str) else ""
            span.set_attributes({"feature_flag.key": key, "flagsvc.tenant": tenant.slug})
            held = RULESETS.held(tenant.pk)
            try:
                result = evaluate_one(tenant=tenant, flag_key=flag_key, user=user)
            finally:
                span.set_attribute("flagsvc.cache_hit", held is not None and RULESETS.held(tenant.pk) is held)
            span.set_attribute("feature_flag.result.reason", result["reason"])
            return result

    return traced  # type: ignore[return-value]
