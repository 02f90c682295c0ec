"""`manage.py automation_breaker (--tenant T | --all) on|off [--reason TEXT]` (docs/operations.md, ADR 0016).

Engages or releases the circuit breaker of automation: while it is on, the worker applies no rollout step
(for one tenant, or with `--all` for the whole installation). Takes effect on the worker's next pass, no
restart. Without on/off it prints the switch's state.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.rollouts import selectors, services
from flags.rollouts.models import AutomationBreaker
from kernel.errors import Invalid
from tenancy.models import Tenant


class Command(BaseCommand):
    help = "Pause (on) or resume (off) every automatic rollout step of a tenant, or of the installation."

    def add_arguments(self, parser: CommandParser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--tenant", help="tenant slug")
        where.add_argument("--all", action="store_true", help="the whole installation")
        parser.add_argument(
            "state", nargs="?", choices=("on", "off"), help="on: pause automation; off: resume"
        )
        parser.add_argument("--reason", default="", help="required with on; stored and audited")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if not options["all"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
        if options["state"] is not None:
            try:
                services.breaker_set(
                    tenant=tenant,
                    engaged=options["state"] == "on",
                    reason=options["reason"],
                    actor="system:automation_breaker",
                )
            except Invalid as error:
                raise CommandError(f"{error.message} (--reason)") from None
        if tenant is not None:
            state = selectors.breaker_document(tenant=tenant)
        else:
            row = AutomationBreaker.objects.filter(scope=AutomationBreaker.INSTALLATION).first()
            state = (row or AutomationBreaker()).to_document()
        self.stdout.write(json.dumps(state))
