"""Every model that affects evaluation invalidates its tenant's compiled ruleset after commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from evaluation.cache import ruleset_version_committed
from flags.models import Flag
from segments.models import Segment

EVALUATION_MODELS: tuple[type[Any], ...] = (Flag, Segment)


def invalidate_ruleset(sender: type[Any], instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    tenant_id = instance.tenant_id
    transaction.on_commit(lambda: ruleset_version_committed(tenant_id))


for _model in EVALUATION_MODELS:
    post_save.connect(invalidate_ruleset, sender=_model, dispatch_uid=f"ruleset_save_{_model.__name__}")
    post_delete.connect(invalidate_ruleset, sender=_model, dispatch_uid=f"ruleset_delete_{_model.__name__}")
