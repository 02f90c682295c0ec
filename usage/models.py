"""How often each flag is served: counts per tenant, flag, variant and reason in hourly buckets (api.md,
Usage and lifecycle), from the server's own evaluations and from SDK reports (`POST /v1/usage`).

Both kinds of source write through `usage.services.usage_record`, which adds a batch's counts and
remembers the batch id in one transaction: a batch sent twice (a retried flush, a retried request) is
counted once.
"""

from __future__ import annotations

from django.db import models

from tenancy.models import Tenant
from tenancy.scoping import TenantScopedManager


class UsageCount(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    flag_key = models.CharField(max_length=128)
    # The served variant; "" when none was (an error answer).
    variant = models.CharField(max_length=128, blank=True, default="")
    reason = models.CharField(max_length=32)
    hour = models.DateTimeField()  # the start of the UTC hour
    n = models.PositiveBigIntegerField(default=0)
    # The latest evaluation counted here (for SDK reports: the end of their hour, or receipt if sooner).
    last_at = models.DateTimeField()

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "flag_key", "variant", "reason", "hour"], name="usage_count_bucket_unique"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "flag_key", "hour"], name="usage_tenant_flag_hour_idx"),
            models.Index(fields=["hour"], name="usage_hour_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.flag_key} {self.variant or '-'} {self.reason} {self.hour:%Y-%m-%d %H}h: {self.n}"


class UsageSpan(models.Model):
    """Per tenant, flag and variant ("" = answers that served none): the first and the last hour counted
    and the latest evaluation, over the counts kept. Written by `usage_record` with the counts and
    narrowed by `usage_prune` with them, so that the staleness evidence of every flag of a tenant
    (flags.staleness) is one row per flag and variant, not a scan of every hourly count."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    flag_key = models.CharField(max_length=128)
    variant = models.CharField(max_length=128, blank=True, default="")
    first_hour = models.DateTimeField()
    last_hour = models.DateTimeField()
    last_at = models.DateTimeField()

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "flag_key", "variant"], name="usage_span_unique")
        ]
        indexes = [
            models.Index(fields=["last_hour"], name="usage_span_last_hour_idx"),
            models.Index(fields=["first_hour"], name="usage_span_first_hour_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.flag_key} {self.variant or '-'}: {self.first_hour:%Y-%m-%d %H}h-{self.last_hour:%Y-%m-%d %H}h"


class UsageBatch(models.Model):
    """A batch already counted, kept for USAGE_BATCH_RETENTION_HOURS to refuse its repeats."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    batch_id = models.CharField(max_length=128)
    received_at = models.DateTimeField()

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "batch_id"], name="usage_batch_unique")]
        indexes = [models.Index(fields=["received_at"], name="usage_batch_received_idx")]

    def __str__(self) -> str:
        return self.batch_id
