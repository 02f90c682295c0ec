from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from flags.selectors import flag_get
from flags.services import flag_create
from kernel.context import acting_as
from segments.selectors import segment_get
from segments.services import segment_create
from tenancy.models import SCOPES, Tenant
from tenancy.services import api_client_create, tenant_create

SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "beta-testers",
        "description": "People who opted into early features",
        "included": ["u-1", "u-2"],
        "excluded": ["u-9"],
        "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
    },
    {
        "key": "internal",
        "description": "Staff accounts",
        "when": {"attr": "email", "op": "ends_with", "value": "@acme.test"},
    },
]

FLAGS: list[dict[str, Any]] = [
    {
        "key": "new-payments",
        "name": "New payments backend",
        "description": "Routes payments through the new provider",
        "state": "on",
        "rules": [{"id": "staff", "when": {"segment": "internal"}, "serve": {"variant": "on"}}],
        "default": {"variant": "on"},
        "tags": ["team:payments"],
    },
    {
        "key": "checkout-redesign",
        "name": "Checkout redesign",
        "description": "New checkout flow, 20 % rollout",
        "state": "on",
        "variants": [
            {"key": "on", "value": True, "weight": 20},
            {"key": "off", "value": False, "weight": 80},
        ],
        "targets": {"allow": ["u-1"], "allow_variant": "on", "deny": ["u-666"]},
        "rules": [{"id": "beta", "when": {"segment": "beta-testers"}, "serve": {"variant": "on"}}],
        "prerequisites": [{"flag": "new-payments", "variants": ["on"]}],
        "tags": ["checkout", "team:payments"],
    },
    {
        "key": "search-ranking",
        "name": "Search ranking experiment",
        "type": "string",
        "state": "on",
        "variants": [
            {"key": "control", "value": "bm25", "weight": 50},
            {"key": "vector", "value": "vector", "weight": 30},
            {"key": "hybrid", "value": "hybrid", "weight": 20},
        ],
        "off_variant": "control",
        "rules": [
            {
                "id": "nl-pro",
                "when": {
                    "all": [
                        {"attr": "country", "op": "eq", "value": "NL"},
                        {"attr": "plan", "op": "eq", "value": "pro"},
                    ]
                },
                "serve": {"variant": "hybrid"},
            }
        ],
        "tags": ["search"],
    },
    {
        "key": "max-upload-mb",
        "name": "Upload limit (MB)",
        "type": "number",
        "state": "off",
        "variants": [{"key": "small", "value": 10}, {"key": "large", "value": 100}],
        "off_variant": "small",
        "default": {"variant": "large"},
    },
]


def local_base_url() -> str:
    """Where `make run` serves: the HOST and PORT that gunicorn.conf.py binds; a wildcard host is
    reached on the loopback address."""
    host = settings.HOST
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - read, not bound
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.PORT}"


class Command(BaseCommand):
    help = "Create the demo tenant `acme` with example segments and flags, and print a working API client."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="acme")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when any tenant exists")
        parser.add_argument("--json", action="store_true", help="print the client as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Tenant.objects.exists():
            self.stdout.write("Database already has tenants; not seeding.")
            return
        with acting_as("system:seed"):
            tenant = Tenant.objects.filter(slug=options["tenant"]).first() or tenant_create(
                slug=options["tenant"], name="Acme Inc. (demo)"
            )
            for segment in SEGMENTS:
                if segment_get(tenant=tenant, key=segment["key"]) is None:
                    segment_create(tenant=tenant, data=segment)
            for flag in FLAGS:
                if flag_get(tenant=tenant, key=flag["key"], include_archived=True) is None:
                    flag_create(tenant=tenant, data=flag)
            issued = api_client_create(tenant=tenant, scopes=list(SCOPES), name="seed demo client")
        payload = {
            "client_id": issued.client.client_id,
            "client_secret": issued.client_secret,
            "tenant": tenant.slug,
            "scopes": issued.client.scopes,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"Seeded tenant {tenant.slug}: {len(SEGMENTS)} segments, {len(FLAGS)} flags.")
        self.stdout.write(f"client_id:     {payload['client_id']}")
        self.stdout.write(f"client_secret: {payload['client_secret']}   (shown once)")
        self.stdout.write(
            f"Get a token:   curl -s -X POST {local_base_url()}/v1/auth/token "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"client_id": "{payload["client_id"]}", "client_secret": "{payload["client_secret"]}"}}\''
        )
