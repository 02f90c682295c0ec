"""Comparing stored and requested documents the way JSON sees them."""

from __future__ import annotations

import json
from typing import Any


def same_document(a: Any, b: Any) -> bool:
    """Equal as JSON values: unlike `==`, `1` and `true` differ, and so do `1` and `"1"`."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
