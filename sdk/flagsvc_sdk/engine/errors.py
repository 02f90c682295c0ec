"""Errors raised when a definition breaks ``rules.md``; each carries the data an API error needs.

The server maps them onto its one error shape (``api.md`` "Conventions"): ``ValidationFailed`` → 422
``validation_error`` with ``details.fields``, ``PayloadTooLarge`` → 413, ``PrerequisiteCycle`` →
409.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DefinitionError(Exception):
    """Base of every error about a flag, segment or user definition."""


class ValidationFailed(DefinitionError):
    """A definition breaks the schema or the rules.

    ``fields`` maps an exact field path (``rules[2].when.all[0].op``) to messages that say how to
    fix it.
    """

    def __init__(self, fields: Mapping[str, Sequence[str]], subject: str = "definition") -> None:
        self.fields: dict[str, list[str]] = {
            path: list(messages) for path, messages in fields.items()
        }
        summary = "; ".join(
            f"{path}: {' '.join(messages)}" for path, messages in self.fields.items()
        )
        super().__init__(f"invalid {subject}: {summary}")


class InvalidDefinition(ValidationFailed):
    """A stored definition handed to ``compile_ruleset`` is invalid; ``kind`` and ``key`` name it.

    A definition that would be refused on write never compiles, so a bad row cannot change answers.
    """

    def __init__(self, kind: str, key: str, fields: Mapping[str, Sequence[str]]) -> None:
        self.kind = kind
        self.key = key
        super().__init__(fields, subject=f"{kind} {key!r}")


class PayloadTooLarge(DefinitionError):
    """A value is over its size cap (``rules.md`` "Flag fields").

    32 KiB for a json variant value, 256 KiB for a whole flag or segment document.
    """

    def __init__(self, field: str, limit: int, size: int) -> None:
        self.field = field
        self.limit = limit
        self.size = size
        super().__init__(
            f"{field} is {size} bytes serialised; the limit is {limit} bytes ({limit // 1024} KiB)"
        )


class PrerequisiteCycle(DefinitionError):
    """The prerequisites would form a cycle (``rules.md``: "Cycles are refused on write").

    ``cycle`` walks the loop and ends where it starts, e.g. ``["a", "b", "a"]``.
    """

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(
            "prerequisites would form a cycle: "
            + " -> ".join(self.cycle)
            + "; remove one of these prerequisites"
        )
