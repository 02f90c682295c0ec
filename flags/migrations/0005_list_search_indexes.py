"""Indexes for the flag lists at 10,000 flags in a tenant (issue 16), PostgreSQL only.

- `key_prefix`: a pattern index on (tenant, key) of live flags, so `key LIKE 'prefix%'` is a range
  scan whatever the database's collation;
- `q` (key, name or description contains, any case): trigram GIN indexes (`pg_trgm`, with the tenant
  through `btree_gin`) on the very expressions Django's `icontains` compares;
- `tag`: a GIN index on (tenant, tags) for `tags @> '["<tag>"]'` (`flags.selectors.with_tag`);

so a search reads the matching rows, not every flag of the tenant. The live-flag partial indexes the
lists order and filter by are in the model (0003); these are PostgreSQL-only expressions that SQLite
cannot build, so they are not in the model state.

`pg_trgm` and `btree_gin` ship with PostgreSQL (contrib); creating them needs a role allowed to (the
database owner on PostgreSQL 13+, where both are trusted extensions). Where they cannot be created
the GIN indexes are skipped with a warning and `q`/`tag` read the tenant's flags (docs/operations.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger("flagsvc.migrations")

PATTERN = (
    "CREATE INDEX IF NOT EXISTS flag_tenant_key_pattern_idx "
    "ON flags_flag (tenant_id, key varchar_pattern_ops) WHERE archived_at IS NULL"
)
# With btree_gin, each index holds the tenant too: one index scan finds one tenant's matches.
GIN = [
    "CREATE INDEX IF NOT EXISTS flag_key_trgm_idx "
    'ON flags_flag USING gin (tenant_id, (UPPER("key"::text)) gin_trgm_ops)',
    "CREATE INDEX IF NOT EXISTS flag_name_trgm_idx "
    'ON flags_flag USING gin (tenant_id, (UPPER("name"::text)) gin_trgm_ops)',
    "CREATE INDEX IF NOT EXISTS flag_description_trgm_idx "
    'ON flags_flag USING gin (tenant_id, (UPPER("description")) gin_trgm_ops)',
    # `tag`: the tags array contains the tag (`flags.selectors.with_tag`, `tags @> '["<tag>"]'`).
    "CREATE INDEX IF NOT EXISTS flag_tags_gin_idx ON flags_flag USING gin (tenant_id, tags jsonb_path_ops)",
]
DROP = [
    "DROP INDEX IF EXISTS flag_tenant_key_pattern_idx",
    "DROP INDEX IF EXISTS flag_key_trgm_idx",
    "DROP INDEX IF EXISTS flag_name_trgm_idx",
    "DROP INDEX IF EXISTS flag_description_trgm_idx",
    "DROP INDEX IF EXISTS flag_tags_gin_idx",
]


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(PATTERN)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    except DatabaseError:
        logger.warning("pg_trgm or btree_gin could not be created: flag search (q, tag) has no index")
        return
    for statement in GIN:
        schema_editor.execute(statement)


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("flags", "0004_rollouts")]

    operations = [migrations.RunPython(create, drop)]
