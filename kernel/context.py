"""Who is acting and for which request: read by the audit receivers, set by every entry point.

The middleware sets it for HTTP requests (API client or admin user), management commands set it
with `acting_as("system:<command>")`. Anything else (a shell) is recorded as `system:shell`.

The change reason (api.md, Safe change: `X-Change-Reason`) travels the same way: the API base view,
the admin forms and `import_flags` set it with `acting_as(actor, reason=...)`; the audit receivers
store it on the entry. `kernel.change_reason.parse_change_reason` is the one reader of its text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_ACTOR = "system:shell"

current_actor: ContextVar[str | None] = ContextVar("current_actor", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
current_tenant: ContextVar[str | None] = ContextVar("current_tenant", default=None)
current_reason: ContextVar[str | None] = ContextVar("current_reason", default=None)


def actor() -> str:
    return current_actor.get() or DEFAULT_ACTOR


def request_id() -> str | None:
    return current_request_id.get()


def reason() -> str | None:
    """Why the current change is made, as the person or client said (None: not said)."""
    return current_reason.get()


@contextmanager
def acting_as(
    actor_name: str | None, request_id: str | None = None, *, reason: str | None = None
) -> Iterator[None]:
    """Act as `actor_name` inside the block; `None` keeps whoever is acting already (and, for
    `request_id` and `reason`, whatever is set already)."""
    actor_token = current_actor.set(actor_name or current_actor.get())
    request_token = current_request_id.set(request_id) if request_id is not None else None
    reason_token = current_reason.set(reason) if reason is not None else None
    try:
        yield
    finally:
        current_actor.reset(actor_token)
        if request_token is not None:
            current_request_id.reset(request_token)
        if reason_token is not None:
            current_reason.reset(reason_token)
