"""Who uses a segment, told by the apps that use segments (flags), so that `segments` imports none of them.

The same inversion as `tenancy.ruleset`'s checks: `flags` registers its reader in `AppConfig.ready`, and
the segment admin asks here which live flags use a segment (its list, its page, its delete guard).
"""

from __future__ import annotations

from typing import Protocol

from django.utils.safestring import SafeString


class SegmentUsers(Protocol):
    """The reader of what refers to segments (the live flags of a tenant)."""

    def by_segment(self, tenant_id: int) -> dict[str, list[str]]:
        """Segment key → keys of what uses it, for a whole tenant in one read."""
        ...

    def links(self, tenant_id: int, keys: list[str]) -> list[SafeString]:
        """Admin links to the users named by `keys`."""
        ...


class _NoUsers:
    def by_segment(self, tenant_id: int) -> dict[str, list[str]]:
        return {}

    def links(self, tenant_id: int, keys: list[str]) -> list[SafeString]:
        return []


_registered: list[SegmentUsers] = []


def register_segment_users(users: SegmentUsers) -> None:
    """Called once by the app whose entities refer to segments (flags, in its `AppConfig.ready`)."""
    if _registered and _registered[0] is not users:
        raise RuntimeError("The users of segments are registered already.")
    _registered[:] = [users]


def segment_users() -> SegmentUsers:
    return _registered[0] if _registered else _NoUsers()
