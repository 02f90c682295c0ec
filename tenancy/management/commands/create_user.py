"""`manage.py create_user <username> --tenant T --role R`: a person for the admin, for operators.

The password comes from a prompt, from `--password-stdin` (first line), or is generated and printed
once (`--generate-password`); it is never an argument (it would sit in the shell history and `ps`).
Run twice with the same tenant and role, the second run changes nothing and says so; any other
existing person with that username is an error that changes nothing.
"""

from __future__ import annotations

import getpass
import json
import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.context import acting_as
from tenancy.models import Membership, Role, Tenant
from tenancy.services import TenancyError, person_create


class Command(BaseCommand):
    help = (
        "Create a person who signs in to /admin/ (staff, not superuser) as a member of one tenant. "
        "Prompts for the password unless --password-stdin or --generate-password is given."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--role", required=True, choices=Role.values, help="viewer, editor or owner")
        parser.add_argument("--email", default="", help="the person's email address")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        source.add_argument(
            "--generate-password", action="store_true", help="generate a password and print it once"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        username, role = options["username"], options["role"]
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}. Create it with `create_tenant`.")
        result: dict[str, Any] = {"username": username, "tenant": tenant.slug, "role": role}

        existing = get_user_model()._default_manager.filter(username=username).first()
        if existing is not None:
            self._already_there(existing, tenant, role, options["email"])
            self._report({**result, "email": existing.email, "created": False}, as_json=options["json"])
            return

        password, generated = self._password(options)
        with acting_as("system:create_user"):
            try:
                person = person_create(
                    username=username, email=options["email"], tenant=tenant, role=role, password=password
                )
            except TenancyError as exc:
                raise CommandError(str(exc)) from None
        result.update(email=getattr(person, "email", ""), created=True)
        if generated:
            result["password"] = password
        self._report(result, as_json=options["json"])

    def _already_there(self, person: Any, tenant: Tenant, role: str, email: str) -> None:
        """Idempotent only for the same request: anything else is an error that changes nothing."""
        memberships = Membership.objects.for_tenant(tenant)
        stored_role = memberships.filter(user=person).values_list("role", flat=True).first()
        if stored_role == role and (not email or email == person.email):
            return
        where = f"is {stored_role} of {tenant.slug}" if stored_role else f"is not a member of {tenant.slug}"
        raise CommandError(
            f"A person named {person.get_username()!r} already exists and {where}. Nothing was changed: "
            "change memberships in the admin (Tenancy > Memberships), or choose another username."
        )

    def _password(self, options: dict[str, Any]) -> tuple[str, bool]:
        if options["generate_password"]:
            return secrets.token_urlsafe(18), True
        if options["password_stdin"]:
            stdin = options.get("stdin") or sys.stdin
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: stdin gave no password.")
            return password, False
        if not sys.stdin.isatty():
            raise CommandError(
                "No terminal to ask for a password: use --password-stdin or --generate-password."
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ. Nothing was changed.")
        return first, False

    def _report(self, result: dict[str, Any], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        if not result["created"]:
            self.stdout.write(
                f"{result['username']} already exists and is {result['role']} of {result['tenant']}: "
                "nothing changed (the password too)."
            )
            return
        self.stdout.write(f"Created {result['username']}, {result['role']} of {result['tenant']}.")
        if "password" in result:
            self.stdout.write(f"password: {result['password']}   (shown once; hand it over now)")
        self.stdout.write("They sign in at /admin/ (staff status is set).")
