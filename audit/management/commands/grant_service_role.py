"""`manage.py grant_service_role --role flagsvc_app`: the least privileges the service runs with.

Run it as the role that owns the tables (the one `migrate` runs as), after every `migrate`. The
service role may then read and write the rows the service needs, and nothing else: it cannot change
the schema, cannot `ALTER TABLE ... DISABLE TRIGGER` (only an owner can), cannot `UPDATE`, `DELETE`
or `TRUNCATE` audit entries (no such privilege; the append-only trigger is a second line), and
cannot `SET session_replication_role` (superusers only), which would silence every trigger.
See docs/operations.md, "Least privilege in the database".
"""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from audit.models import AuditEntry

ROW_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Tables the service may only add to, or only read: everything else gets ROW_PRIVILEGES.
NARROWER: dict[str, tuple[str, ...]] = {
    AuditEntry._meta.db_table: ("SELECT", "INSERT"),
    "django_migrations": ("SELECT",),
}
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def service_role_grants(*, role: str, database: str, tables: list[str]) -> list[str]:
    """The statements, in order: start from nothing on our tables, then grant what the service needs."""
    quote = connection.ops.quote_name
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(role)}",
        f"GRANT USAGE ON SCHEMA public TO {quote(role)}",
        f"REVOKE CREATE ON SCHEMA public FROM {quote(role)}",
    ]
    for table in sorted(tables):
        privileges = ", ".join(NARROWER.get(table, ROW_PRIVILEGES))
        statements.append(f"REVOKE ALL ON TABLE {quote(table)} FROM {quote(role)}")
        statements.append(f"GRANT {privileges} ON TABLE {quote(table)} TO {quote(role)}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quote(role)}")
    return statements


class Command(BaseCommand):
    help = (
        "Grant a PostgreSQL login role the privileges the service needs (rows, not schema; audit "
        "entries insert-only). Run as the owner of the tables, after every migrate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--role", required=True, help="the role the service connects as, e.g. flagsvc_app"
        )
        parser.add_argument(
            "--print-sql", action="store_true", help="print the statements instead of running them"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role: str = options["role"]
        if connection.vendor != "postgresql":
            raise CommandError(
                "Database roles are a PostgreSQL matter; this database is " + connection.vendor
            )
        if not _ROLE_NAME.match(role):
            raise CommandError(f"{role!r}: use a plain role name (lowercase letters, digits, _).")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_user")
            database, owner = cursor.fetchone()
        tables = [*connection.introspection.django_table_names(only_existing=True), "django_migrations"]
        statements = service_role_grants(role=role, database=database, tables=tables)
        if options["print_sql"]:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            _check_role(cursor, role=role, owner=owner)
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(
            f"Granted {role} rows on {len(tables)} tables of {database} "
            f"({AuditEntry._meta.db_table}: SELECT, INSERT only). Run the service as {role}."
        )


def _check_role(cursor: Any, *, role: str, owner: str) -> None:
    """Refuse a role for which the grants would mean nothing: a superuser, the owner or a member of it."""
    cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    row = cursor.fetchone()
    if row is None:
        raise CommandError(
            f"No role {role!r}. Create it first (as a role with CREATEROLE): "
            f"CREATE ROLE {role} LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE;"
        )
    if row[0]:
        raise CommandError(
            f"{role} is a superuser: it can disable any trigger. Use a role without SUPERUSER."
        )
    if role == owner:
        raise CommandError(
            f"{role} owns the tables (it runs this command); the service needs a role of its own."
        )
    cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
    if cursor.fetchone()[0]:
        raise CommandError(f"{role} is a member of {owner}, the owner of the tables: revoke that membership.")
