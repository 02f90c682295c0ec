from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.context import acting_as
from tenancy.models import SCOPES, Tenant
from tenancy.services import TenancyError, api_client_create


class Command(BaseCommand):
    help = "Create an API client for a tenant and print its id and secret (the secret is shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            choices=SCOPES,
            help="a scope to grant; repeat for several",
        )
        parser.add_argument("--name", default="", help="what this client is for")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}. Create it with `create_tenant`.")
        with acting_as("system:create_api_client"):
            try:
                issued = api_client_create(tenant=tenant, scopes=options["scope"], name=options["name"])
            except TenancyError as exc:
                raise CommandError(str(exc)) from None
        payload = {
            "client_id": issued.client.client_id,
            "client_secret": issued.client_secret,
            "tenant": tenant.slug,
            "scopes": issued.client.scopes,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"client_id:     {payload['client_id']}")
        self.stdout.write(f"client_secret: {payload['client_secret']}   (shown once; store it now)")
        self.stdout.write(f"tenant:        {tenant.slug}")
        self.stdout.write(f"scopes:        {' '.join(issued.client.scopes)}")
