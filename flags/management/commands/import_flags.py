"""`manage.py import_flags --tenant T FILE [--dry-run] [--prune] [--reason TEXT]` (docs/operations.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.config_io import IMPORT_ACTOR, Format, ImportRejected, document_loads, ruleset_import
from kernel.change_reason import parse_change_reason
from kernel.context import acting_as
from kernel.errors import Invalid
from tenancy.change_policy import require_reason_by_policy
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Make a tenant's segments and live flags what an export_flags document says, through the write "
        "services (audited as system:import_flags), all or nothing. Unchanged entities are not written. "
        "A change to a protected flag opens a change request instead; then the command exits with code 3."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("file", help="JSON or YAML document from export_flags; - reads standard input")
        parser.add_argument("--dry-run", action="store_true", help="print the changes and write nothing")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="also archive the live flags and delete the segments that the file does not name",
        )
        parser.add_argument(
            "--reason",
            help="why (stored on every audit entry of the import; required when the tenant requires reasons)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        try:
            reason = parse_change_reason(options.get("reason"))
            if not options["dry_run"]:
                require_reason_by_policy(tenant, reason)
        except Invalid as exc:
            raise CommandError(f"--reason: {exc.message}") from None
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from None
        suffix = Path(name).suffix.lower()
        fmt: Format | None = "yaml" if suffix in (".yaml", ".yml") else "json" if suffix == ".json" else None
        try:
            document = document_loads(text, fmt)
        except ValueError as exc:
            raise CommandError(f"{name} is {exc}") from None
        with acting_as(IMPORT_ACTOR, reason=reason):
            try:
                plan = ruleset_import(
                    tenant=tenant, document=document, dry_run=options["dry_run"], prune=options["prune"]
                )
            except ImportRejected as exc:
                raise CommandError(f"{name} was not applied to {tenant.slug}. {exc}") from None
        heading = "Plan (dry run)" if options["dry_run"] else "Applied"
        self.stdout.write(f"{heading} for tenant {tenant.slug} from {name}:")
        for line in plan.render():
            self.stdout.write(line)
        if plan.change_requests:
            # Four eyes: the rest is applied; the protected flags wait for another person's approval.
            raise CommandError(
                f"{len(plan.change_requests)} protected flag(s) were not changed: change request(s) "
                + ", ".join(f"#{cr_id} ({key})" for key, cr_id in plan.change_requests)
                + " need another person's approval (admin: Change requests; API: /v1/change-requests).",
                returncode=3,
            )
