"""`manage.py revoke_api_client <client_id>`: a leaked secret stops working (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy.selectors import api_client_by_id
from tenancy.services import api_client_revoke


class Command(BaseCommand):
    help = (
        "Revoke an API client: it can get no new token, and its tokens are refused by every process within "
        "API_CLIENT_CHECK_INTERVAL seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id")

    def handle(self, *args: Any, **options: Any) -> None:
        client = api_client_by_id(options["client_id"])
        if client is None:
            raise CommandError(f"No API client {options['client_id']!r}.")
        if not client.is_active:
            self.stdout.write(f"{client.client_id} ({client.tenant.slug}) was already revoked.")
            return
        api_client_revoke(client=client)
        self.stdout.write(
            f"Revoked {client.client_id} ({client.tenant.slug}). Its tokens stop working everywhere within "
            f"{settings.API_CLIENT_CHECK_INTERVAL:g} s. Create a replacement with create_api_client."
        )
