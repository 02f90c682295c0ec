from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.context import acting_as
from tenancy.services import TenancyError, tenant_create


class Command(BaseCommand):
    help = "Create a tenant. The slug is the value clients send as X-Tenant-ID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="lowercase letters, digits and dashes, e.g. acme")
        parser.add_argument("--name", default="", help="a display name (defaults to the slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("system:create_tenant"):
            try:
                tenant = tenant_create(slug=options["slug"], name=options["name"])
            except TenancyError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"Created tenant {tenant.slug}")
