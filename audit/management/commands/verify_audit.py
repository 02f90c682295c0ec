"""`manage.py verify_audit (--tenant T | --all-tenants)`: check the tamper-evident audit chain."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verification import verify_chain
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Verify tenants' tamper-evident audit chains; exit 1 and name the first broken link if any. "
        "Prints each chain's head (seq and hash): keep it to detect a later truncation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", help="tenant slug")
        which.add_argument("--all-tenants", action="store_true", help="every tenant, active or not")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all_tenants"]:
            tenants = list(Tenant.objects.order_by("slug"))
        else:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            tenants = [tenant]
        failures = []
        for tenant in tenants:
            report = verify_chain(tenant=tenant)
            if report.broken is None:
                self.stdout.write(
                    f"OK: {report.checked} audit entries of {tenant.slug}, chain intact; "
                    f"head seq {report.head_seq} hash {report.head_hash}."
                )
                continue
            link = report.broken
            failures.append(
                f"{tenant.slug}: BROKEN at seq {link.seq} (entry id {link.entry_id}): {link.reason}. "
                f"{report.checked} entries before it verified."
            )
        if failures:
            raise CommandError("\n".join(failures))
