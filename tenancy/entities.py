"""The versioned tenant entity: what flags and segments are (a tenant's, by key, with a version).

Every save of an existing row is a new version, whatever the caller, and bulk queryset writes are
refused because they would skip that and the model signals that others listen to (the audit log,
the ruleset cache). The optimistic-concurrency check of an expected version belongs to the write path
(`tenancy.versioning.check_version`), not to the model.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.db import models, transaction

from tenancy.models import Tenant


class BulkWriteRefused(TypeError):
    """Bulk queryset writes skip model signals (audit, cache) and the version; use the write services."""


class VersionedQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise BulkWriteRefused(
            f"{self.model.__name__}: bulk update() would skip the version and the audit log; "
            "use the write services."
        )

    def delete(self) -> NoReturn:
        raise BulkWriteRefused(
            f"{self.model.__name__}: bulk delete() would skip the audit log; use the write services."
        )

    delete.queryset_only = True  # type: ignore[attr-defined]


class VersionedTenantEntity(models.Model):
    """A tenant's entity, named by `key`, whose `version` goes up by one on every save of an existing row.

    Subclasses name their kind in `entity_name` ("flag", "segment": the audit log's `entity` and the
    word in error messages) and render the API document in `to_document()`. Saves and deletes run in a
    transaction, so what listens to their signals (the audit log) commits or rolls back with them.
    """

    entity_name: ClassVar[str]

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT)
    key = models.CharField(max_length=128)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True

    def to_document(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            self.version += 1
        with transaction.atomic():
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        with transaction.atomic():
            return super().delete(*args, **kwargs)
