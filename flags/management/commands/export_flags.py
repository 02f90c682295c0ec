"""`manage.py export_flags --tenant T [--output FILE] [--format json|yaml]` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.config_io import Format, document_dumps, ruleset_export
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Write a tenant's segments and live flags (content fields only, sorted by key) as one JSON or "
        "YAML document, for `import_flags`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument(
            "--format",
            choices=("json", "yaml"),
            help="default: yaml when --output ends in .yaml or .yml, json otherwise",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        output = options["output"]
        fmt: Format = options["format"] or (
            "yaml" if output and Path(output).suffix.lower() in (".yaml", ".yml") else "json"
        )
        text = document_dumps(ruleset_export(tenant=tenant), fmt)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {tenant.slug}'s ruleset to {output} ({fmt}).")
        else:
            self.stdout.write(text, ending="")
