"""`manage.py purge_archived_flags [--tenant T] [--dry-run] [--limit N] [--json]` (docs/operations.md,
Retention): purge the archived flags past FLAG_ARCHIVE_RETENTION_DAYS, as the worker does every
WORKER_PRUNE_INTERVAL_SECONDS (flags.retention says what goes and what stays)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flags.retention import PURGE_ACTOR, flags_purge_archived
from kernel.context import acting_as
from kernel.timefmt import format_datetime
from tenancy.models import Tenant


class Command(BaseCommand):
    help = "Purge archived flags past FLAG_ARCHIVE_RETENTION_DAYS (audit entries stay, keys stay reserved)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant, one after the other)")
        parser.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
        parser.add_argument("--limit", type=int, help="at most this many flags per tenant")
        parser.add_argument("--json", action="store_true", help="one JSON document on standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        tenants = Tenant.objects.order_by("slug")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant {options['tenant']!r}.")
        now = timezone.now()
        reports = []
        with acting_as(PURGE_ACTOR):
            for tenant in tenants:
                reports.append(
                    flags_purge_archived(
                        tenant=tenant, now=now, dry_run=options["dry_run"], limit=options["limit"]
                    )
                )
        if options["json"]:
            self.stdout.write(json.dumps({"tenants": [r.to_document() for r in reports]}, indent=2))
            return
        verb = "would purge" if options["dry_run"] else "purged"
        for report in reports:
            if not report.purged and not report.held:
                continue
            self.stdout.write(
                f"{report.tenant}: {verb} {len(report.purged)} flags archived before "
                f"{format_datetime(report.cutoff)}"
            )
            for flag in report.purged:
                self.stdout.write(
                    f"  {flag.key}: archived {format_datetime(flag.archived_at)}; {flag.versions} versions, "
                    f"{flag.change_requests} change requests, {flag.rollouts} rollout plans, "
                    f"{flag.usage_rows} usage rows"
                )
            for key in report.held:
                self.stdout.write(f"  {key}: held by an open change request (decide it first)")
        total = sum(len(r.purged) for r in reports)
        self.stdout.write(f"{verb.capitalize()} {total} archived flags.")
