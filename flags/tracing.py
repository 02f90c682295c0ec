"""The `flag.update` span around each flag write service (issue 15, item 7; docs/operations.md, Traces).

One helper for all of `flags/services.py`'s writes: the key, the operation, the version written (or
kept) and the kind of actor (`user`, `client`, `system`), never a user id, a document or a secret.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flags.models import Flag
from kernel import context, tracing

Write = TypeVar("Write", bound=Callable[..., Any])


def flag_write_span(operation: str) -> Callable[[Write], Write]:
    def decorate(write: Write) -> Write:
        @functools.wraps(write)
        def traced(**kwargs: Any) -> Any:
            tracer = tracing.TRACER
            if tracer is None:
                return write(**kwargs)
            with tracer.start_as_current_span("flag.update") as span:
                key = kwargs.get("key") or (kwargs.get("data") or {}).get("key")
                span.set_attributes(
                    {
                        "feature_flag.key": key[: tracing.MAX_KEY_CHARS] if isinstance(key, str) else "",
                        "flagsvc.operation": operation,
                        "flagsvc.tenant": kwargs["tenant"].slug,
                        "flagsvc.actor.kind": tracing.actor_kind(kwargs.get("actor") or context.actor()),
                    }
                )
                result = write(**kwargs)
                flag = result[0] if isinstance(result, tuple) else result
                if isinstance(flag, Flag):
                    span.set_attribute("flagsvc.flag.version", flag.version)
                return result

        return traced  # type: ignore[return-value]

    return decorate
