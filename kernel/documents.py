"""Comparing stored and requested documents the way JSON sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def same_document(a: Any, b: Any) -> bool:
    """Equal as JSON values: unlike `==`, `1` and `true` differ, and so do `1` and `"1"`."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def objects_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a document (conditions, rules, ...), depth first, without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
