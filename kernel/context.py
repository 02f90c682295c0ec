"""Who is acting and for which request: read by the audit receivers, set by every entry point.

The middleware sets it for HTTP requests (API client or admin user), management commands set it
with `acting_as("system:<command>")`. Anything else (a shell) is recorded as `system:shell`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_ACTOR = "system:shell"

current_actor: ContextVar[str | None] = ContextVar("current_actor", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
current_tenant: ContextVar[str | None] = ContextVar("current_tenant", default=None)


def actor() -> str:
    return current_actor.get() or DEFAULT_ACTOR


def request_id() -> str | None:
    return current_request_id.get()


@contextmanager
def acting_as(actor_name: str | None, request_id: str | None = None) -> Iterator[None]:
    """Act as `actor_name` inside the block; `None` keeps whoever is acting already."""
    actor_token = current_actor.set(actor_name or current_actor.get())
    request_token = current_request_id.set(request_id) if request_id is not None else None
    try:
        yield
    finally:
        current_actor.reset(actor_token)
        if request_token is not None:
            current_request_id.reset(request_token)
