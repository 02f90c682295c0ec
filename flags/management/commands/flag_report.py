"""`manage.py flag_report --tenant T [--stale] [--json]` (docs/operations.md): each live flag (or each
stale one) with its last evaluation and, when stale, the reason, since when, and what to do about it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flags import selectors
from flags.staleness import clean_up, stale_flags
from kernel.timefmt import format_datetime, iso
from tenancy.models import Tenant
from usage.selectors import last_evaluated


class Command(BaseCommand):
    help = "Report a tenant's stale flags (flags.staleness): reason, since, last evaluated, clean-up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--stale", action="store_true", help="only the stale flags (the debt)")
        parser.add_argument("--json", action="store_true", help="one JSON document on standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        now = timezone.now()
        live = selectors.flag_queryset(tenant=tenant).order_by("key")
        stale = {key: why for key, why, _ in stale_flags(tenant=tenant, flags=live, now=now)}
        latest = last_evaluated(tenant=tenant)
        keys = list(stale) if options["stale"] else list(live.values_list("key", flat=True))
        rows = [
            {
                "key": key,
                "stale": stale[key].to_document() if key in stale else None,
                "last_evaluated_at": iso(latest.get(key)),
                "clean_up": clean_up(key, stale[key]) if key in stale else None,
            }
            for key in keys
        ]
        if options["json"]:
            self.stdout.write(json.dumps({"tenant": tenant.slug, "at": iso(now), "flags": rows}, indent=2))
            return
        if not rows:
            self.stdout.write(f"No {'stale ' if options['stale'] else ''}flags in {tenant.slug}.")
            return
        for key in keys:
            last = format_datetime(latest.get(key)) or "never"
            why = stale.get(key)
            if why is None:
                self.stdout.write(f"{key}: not stale (last evaluated {last})")
                continue
            self.stdout.write(
                f"{key}: {why.reason} since {format_datetime(why.since)}; last evaluated {last}\n"
                f"  -> {clean_up(key, why)}"
            )
