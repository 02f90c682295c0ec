"""Case-sensitive text matching in queries, the same on PostgreSQL and SQLite.

Django's `startswith` and `contains` are SQL `LIKE`, which SQLite compares without case for ASCII:
`?key_prefix=Case` listed `casekey2` there and not on PostgreSQL, while keys and tags are
case-sensitive (api.md). These keep the `LIKE` (an index can serve it on PostgreSQL) and add a
comparison SQLite makes with case: `substr(...) = prefix`, `instr(...) > 0`.
"""

from __future__ import annotations

from django.db.models import Q, Value
from django.db.models.functions import StrIndex, Substr
from django.db.models.lookups import Exact, GreaterThan


def starts_with(field: str, prefix: str) -> Q:
    """`field` begins with `prefix`, case and all."""
    return Q(**{f"{field}__startswith": prefix}) & Q(Exact(Substr(field, 1, len(prefix)), Value(prefix)))


def contains(field: str, text: str) -> Q:
    """`field` holds `text`, case and all."""
    return Q(**{f"{field}__contains": text}) & Q(GreaterThan(StrIndex(field, Value(text)), 0))
