"""Compiled conditions and segments (``rules.md`` "Conditions"), with a fast and a traced path.

A checked condition becomes a small tree of nodes. ``predicate`` folds the tree into closures once,
at compile time, for the untraced path; ``trace_condition`` walks the same nodes and records every
condition it tried. Both short-circuit ``all``/``any`` the same way; the traced path uses the leaf
tests of ``operators.make_test``, the fast path the same tests or, for the commonest leaves, the
one-call equivalents of ``operators.make_predicate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine.operators import (
    NO_VALUE_OPERATORS,
    Predicate,
    Test,
    make_predicate,
    make_test,
)
from flagsvc_sdk.engine.values import read_path

Attributes = dict[str, Any]
TraceEntry = dict[str, Any]


class Leaf:
    """``{"attr", "op", "value"}``; ``path`` is ``None`` for ``id``, the user's id."""

    __slots__ = ("attribute", "expected", "op", "path", "test")

    def __init__(self, attribute: str, op: str, expected: Any) -> None:
        self.attribute = attribute
        self.op = op
        self.expected = expected
        self.path: tuple[str, ...] | None = (
            None if attribute == "id" else tuple(attribute.split("."))
        )
        self.test: Test = make_test(op, expected)

    def read(self, user_id: str, attributes: Attributes) -> Any:
        return user_id if self.path is None else read_path(attributes, self.path)


class Combinator:
    """``all``, ``any`` or ``not`` (``not`` has exactly one child)."""

    __slots__ = ("children", "kind")

    def __init__(self, kind: str, children: tuple[Node, ...]) -> None:
        self.kind = kind
        self.children = children


class CompiledSegment:
    """A segment: its ``included`` ids match, else (unless ``excluded``) its ``when`` decides.

    Without ``when`` only ``included`` ids match (``rules.md`` "Conditions", last paragraph).
    """

    __slots__ = ("doc", "excluded", "included", "key", "matches", "version", "when")

    def __init__(self, doc: Mapping[str, Any], version: int | None) -> None:
        self.doc = doc  # the validated document it was compiled from
        self.key: str = doc["key"]
        self.version = version
        self.included = frozenset(doc["included"])
        self.excluded = frozenset(doc["excluded"])
        self.when: Node | None = None if doc["when"] is None else build_node(doc["when"], {})
        self.matches: Predicate = self._predicate()

    def _predicate(self) -> Predicate:
        included, excluded = self.included, self.excluded
        if self.when is None:
            return lambda user_id, attributes: user_id in included
        when = predicate(self.when)
        return lambda user_id, attributes: (
            user_id in included or (user_id not in excluded and when(user_id, attributes))
        )


class SegmentReference:
    __slots__ = ("segment",)

    def __init__(self, segment: CompiledSegment) -> None:
        self.segment = segment


Node = Leaf | Combinator | SegmentReference


def build_node(condition: Mapping[str, Any], segments: Mapping[str, CompiledSegment]) -> Node:
    """The node tree of a condition that ``check_condition`` normalised."""
    if "segment" in condition:
        return SegmentReference(segments[condition["segment"]])
    if "not" in condition:
        return Combinator("not", (build_node(condition["not"], segments),))
    for kind in ("all", "any"):
        if kind in condition:
            return Combinator(kind, tuple(build_node(child, segments) for child in condition[kind]))
    return Leaf(condition["attr"], condition["op"], condition.get("value"))


def predicate(node: Node) -> Predicate:
    """Fold a node tree into closures; the shapes that occur most get the fewest calls."""
    if isinstance(node, SegmentReference):
        return node.segment.matches
    if isinstance(node, Leaf):
        return _leaf_predicate(node)
    children = tuple(predicate(child) for child in node.children)
    if node.kind == "not":
        (child,) = children
        return lambda user_id, attributes: not child(user_id, attributes)
    if len(children) == 1:
        return children[0]
    if node.kind == "all":
        return _all(children)
    return _any(children)


def _all(children: tuple[Predicate, ...]) -> Predicate:
    if not children:
        return lambda user_id, attributes: True
    if len(children) == 2:
        first, second = children
        return lambda user_id, attributes: (
            first(user_id, attributes) and second(user_id, attributes)
        )

    def every(user_id: str, attributes: Attributes) -> bool:
        for child in children:  # noqa: SIM110 - a loop, not a generator, on the hot path
            if not child(user_id, attributes):
                return False
        return True

    return every


def _any(children: tuple[Predicate, ...]) -> Predicate:
    if not children:
        return lambda user_id, attributes: False
    if len(children) == 2:
        first, second = children
        return lambda user_id, attributes: first(user_id, attributes) or second(user_id, attributes)

    def some(user_id: str, attributes: Attributes) -> bool:
        for child in children:  # noqa: SIM110 - a loop, not a generator, on the hot path
            if child(user_id, attributes):
                return True
        return False

    return some


def _leaf_predicate(leaf: Leaf) -> Predicate:
    test, path = leaf.test, leaf.path
    if path is None:
        return lambda user_id, attributes: test(user_id)
    if len(path) == 1:
        (name,) = path
        direct = make_predicate(leaf.op, leaf.expected, name)
        if direct is not None:
            return direct
        return lambda user_id, attributes: test(attributes.get(name))
    return lambda user_id, attributes: test(read_path(attributes, path))


def trace_condition(node: Node, user_id: str, attributes: Attributes) -> tuple[bool, TraceEntry]:
    """Evaluate ``node`` like ``predicate`` does, recording each condition tried (``api.md``
    preview).
    """
    if isinstance(node, Leaf):
        actual = node.read(user_id, attributes)
        outcome = node.test(actual)
        expected = None if node.op in NO_VALUE_OPERATORS else node.expected
        return outcome, {
            "attribute": node.attribute,
            "operator": node.op,
            "expected": expected,
            "actual": actual,
            "outcome": outcome,
        }
    if isinstance(node, SegmentReference):
        return trace_segment(node.segment, user_id, attributes)
    entries: list[TraceEntry] = []
    outcome = node.kind != "any"
    for child in node.children:
        child_outcome, entry = trace_condition(child, user_id, attributes)
        entries.append(entry)
        if node.kind == "not":
            outcome = not child_outcome
        elif child_outcome != outcome:
            outcome = child_outcome
            break
    return outcome, {"combinator": node.kind, "outcome": outcome, "conditions": entries}


def trace_segment(
    segment: CompiledSegment, user_id: str, attributes: Attributes
) -> tuple[bool, TraceEntry]:
    """A segment step: ``matched_by`` says which part decided (``None`` when it did not match)."""
    entries: list[TraceEntry] = []
    if user_id in segment.included:
        outcome, matched_by = True, "included"
    elif user_id in segment.excluded:
        outcome, matched_by = False, "excluded"
    elif segment.when is None:
        outcome, matched_by = False, None
    else:
        outcome, entry = trace_condition(segment.when, user_id, attributes)
        entries.append(entry)
        matched_by = "when" if outcome else None
    return outcome, {
        "segment": segment.key,
        "outcome": outcome,
        "matched_by": matched_by,
        "conditions": entries,
    }
