"""Caps and shapes that ``rules.md`` and ``api.md`` fix, in one place so that every check agrees."""

from __future__ import annotations

import re
from typing import Final

KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Flag, segment, variant and rule keys (``api.md`` "Conventions"); always used with ``fullmatch``.
"""

MAX_JSON_VALUE_BYTES: Final = 32 * 1024
MAX_DOCUMENT_BYTES: Final = 256 * 1024
MAX_NAME_CHARS: Final = 200
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_TAGS: Final = 50
MAX_TAG_CHARS: Final = 64
MAX_VARIANTS: Final = 100
MAX_RULES: Final = 200
MAX_CONDITIONS: Final = 1000
"""Condition objects (each ``attr`` leaf, ``all``/``any``/``not`` and ``segment`` reference) in all
the rules of one flag, or in one segment's ``when``. With ``MAX_RULES`` it bounds the work of one
evaluation, which every request and every SDK pays.
"""
MAX_ATTRIBUTE_CHARS: Final = 128
MAX_CONDITION_DEPTH: Final = 16
MAX_JSON_DEPTH: Final = 64
"""Objects and arrays nest at most this deep in a flag or segment document (its variant values
included) and in a request body. The deepest valid condition (16 levels of ``all``, a list at the
bottom) reaches depth 35 of its flag, 36 of a preview request that carries the flag.
"""
MAX_SAFE_INTEGER: Final = 2**53 - 1
"""The largest integer that every JSON reader holds exactly: SDKs in other languages read a JSON
number as an IEEE 754 double (I-JSON, RFC 7493 section 2.2). A larger one would be served rounded.
"""
MAX_REPORTED_PROBLEMS: Final = 20
"""A document full of bad values is refused with this many problems, not one per value."""
MAX_PATTERN_CHARS: Final = 1024
MAX_PREREQUISITE_DEPTH: Final = 8
"""Longest prerequisite chain, in edges: ``a -> b`` is 1. Checked on write, enforced again at
evaluation.
"""
MAX_USER_ID_CHARS: Final = 256

BOOLEAN_VARIANTS: Final = (
    {"key": "on", "value": True, "weight": 100},
    {"key": "off", "value": False, "weight": 0},
)
"""``rules.md``: "A boolean flag created without variants gets on(true) / off(false)"."""

FLAG_FIELDS: Final = frozenset(
    {
        "key",
        "name",
        "description",
        "type",
        "state",
        "variants",
        "off_variant",
        "targets",
        "rules",
        "default",
        "prerequisites",
        "bucket_by",
        "tags",
    }
)
SEGMENT_FIELDS: Final = frozenset({"key", "name", "description", "included", "excluded", "when"})
READ_ONLY_FIELDS: Final = frozenset({"version", "created_at", "updated_at", "archived_at"})
"""Stored alongside a definition but never part of it; ``compile_ruleset`` sets them aside."""
