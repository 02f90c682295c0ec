"""Every saved flag version is stored as a FlagVersion row, in the transaction of the save."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from flags.models import Flag, FlagVersion
from kernel import context


@receiver(post_save, sender=Flag, dispatch_uid="flags_store_version")
def store_flag_version(sender: type[Flag], instance: Flag, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    FlagVersion.objects.for_tenant(instance.tenant_id).create(
        tenant_id=instance.tenant_id,
        flag=instance,
        version=instance.version,
        document=instance.to_document(),
        actor=context.actor(),
    )


@receiver(pre_save, sender=Flag, dispatch_uid="flags_remember_updated_by")
def remember_updated_by(sender: type[Flag], instance: Flag, **kwargs: Any) -> None:
    """Who made the last change, for the admin's list (every write path sets the actor)."""
    if not kwargs.get("raw"):
        instance.updated_by = context.actor()
