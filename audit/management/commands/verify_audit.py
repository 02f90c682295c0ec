from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verification import verify_chain
from tenancy.models import Tenant


class Command(BaseCommand):
    help = "Verify a tenant's tamper-evident audit chain; exit 1 and name the first broken link if any."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        report = verify_chain(tenant=tenant)
        if report.broken is None:
            self.stdout.write(f"OK: {report.checked} audit entries of {tenant.slug}, chain intact.")
            return
        link = report.broken
        raise CommandError(
            f"BROKEN at seq {link.seq} (entry id {link.entry_id}): {link.reason}. "
            f"{report.checked} entries before it verified."
        )
