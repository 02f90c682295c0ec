"""PLACEHOLDER from the `webhooks` branch: the `events` branch owns this module and its version wins
the merge. Only `prune_events(now)`, which the worker calls, is here, with the same signature."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from audit.models import ChangeEvent


def prune_events(now: datetime) -> int:
    cutoff = now - timedelta(days=getattr(settings, "EVENT_RETENTION_DAYS", 7))
    deleted, _ = ChangeEvent.all_tenants.filter(ts__lt=cutoff).delete()
    return deleted
