"""Compiled conditions and segments (``rules.md`` "Conditions"), with a fast and a traced path.

A checked condition becomes a small tree of nodes. ``predicate`` folds the tree into native
``Check`` objects once, at compile time, for the untraced path; ``trace_condition`` walks the same
nodes and records every condition it tried. Both short-circuit ``all``/``any`` the same way; the
traced path uses the leaf tests of ``operators.make_test``, the fast path the same tests or, for the
commonest leaves, the one-call equivalents of ``operators.make_predicate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine.operators import (
    NO_VALUE_OPERATORS,
    Check,
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
        self.matches: Check = InSegment(
            self.included, self.excluded, None if self.when is None else predicate(self.when)
        )


class InSegment(Check):
    """Its ``included`` ids match; else, unless ``excluded``, its ``when`` decides (none: no)."""

    def __init__(
        self, included: frozenset[str], excluded: frozenset[str], when: Check | None
    ) -> None:
        self.included = included
        self.excluded = excluded
        self.when = when

    def holds(self, user_id: str, attributes: dict[str, Any]) -> bool:
        if user_id in self.included:
            return True
        when = self.when
        return when is not None and user_id not in self.excluded and when.holds(user_id, attributes)


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


def predicate(node: Node) -> Check:
    """Fold a node tree into native checks; the shapes that occur most get the fewest calls."""
    if isinstance(node, SegmentReference):
        return node.segment.matches
    if isinstance(node, Leaf):
        return _leaf_check(node)
    children = tuple(predicate(child) for child in node.children)
    if node.kind == "not":
        (child,) = children
        return Not(child)
    if len(children) == 1:
        return children[0]
    if node.kind == "all":
        return AllOf(children)
    return AnyOf(children)


class Not(Check):
    def __init__(self, child: Check) -> None:
        self.child = child

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        return not self.child.holds(user_id, attributes)


class AllOf(Check):
    """Every child holds (none: true), tried in order until one does not."""

    def __init__(self, children: tuple[Check, ...]) -> None:
        self.children = children

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        for child in self.children:  # noqa: SIM110 - a loop, not a generator, on the hot path
            if not child.holds(user_id, attributes):
                return False
        return True


class AnyOf(Check):
    """Some child holds (none: false), tried in order until one does."""

    def __init__(self, children: tuple[Check, ...]) -> None:
        self.children = children

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        for child in self.children:  # noqa: SIM110 - a loop, not a generator, on the hot path
            if child.holds(user_id, attributes):
                return True
        return False


class IdTest(Check):
    """A leaf on ``id``: the test of the user's id."""

    def __init__(self, test: Test) -> None:
        self.test = test

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        return bool(self.test(user_id))


class AttributeTest(Check):
    """A leaf on a top-level attribute, by its test (``make_test``)."""

    def __init__(self, test: Test, name: str) -> None:
        self.test = test
        self.name = name

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        return bool(self.test(attributes.get(self.name)))


class PathTest(Check):
    """A leaf on a dotted attribute (``org.plan``), by its test."""

    def __init__(self, test: Test, path: tuple[str, ...]) -> None:
        self.test = test
        self.path = path

    def holds(self, user_id: str, attributes: Attributes) -> bool:
        return bool(self.test(read_path(attributes, self.path)))


def _leaf_check(leaf: Leaf) -> Check:
    test, path = leaf.test, leaf.path
    if path is None:
        return IdTest(test)
    if len(path) == 1:
        (name,) = path
        direct = make_predicate(leaf.op, leaf.expected, name)
        if direct is not None:
            return direct
        return AttributeTest(test, name)
    return PathTest(test, path)


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
