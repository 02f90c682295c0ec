"""The traced and untraced evaluations are one walk: the same answer for whole generated rulesets.

Flags with every step ``rules.md`` "Order of evaluation" has: off, prerequisite chains (missing,
cyclic and too deep included), deny and allow lists, rules over segments and every operator, splits
in rules and in the default, and ``bucket_by`` paths a user may lack. For random users, the
preview's trace must not change the variant, value, reason, rule id or bucket, and must record the
step that decided.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from builders import user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagsvc_sdk.engine import (
    EvaluationResult,
    bucketing,
    compile_ruleset,
    evaluate,
    validate_flag,
    validate_segment,
)
from flagsvc_sdk.engine.limits import MAX_PREREQUISITE_DEPTH
from flagsvc_sdk.engine.operators import OPERATORS

VARIANTS = ("a", "b", "c")
IDS = ("u-1", "u-2", "u-3", "ü-4", "u-5")
FLAG_COUNT = MAX_PREREQUISITE_DEPTH + 3
"""Enough flags for a chain deeper than the cap."""
SEGMENTS = ("s0", "s1")
ATTRIBUTES = ("country", "plan", "age", "org.plan", "id", "email", "version", "seen")

LEAVES: list[tuple[str, Any]] = [
    ("eq", "NL"),
    ("eq", 35),
    ("neq", "NL"),
    ("in", ["NL", 35, True]),
    ("not_in", ["pro"]),
    ("contains", "a"),
    ("starts_with", "N"),
    ("ends_with", "com"),
    ("regex", r"^[a-z]+@acme\.com$"),
    ("lt", 40),
    ("lte", 35),
    ("gt", 18),
    ("gte", 30),
    ("between", [30, 40]),
    ("semver_eq", "1.2.3"),
    ("semver_lt", "2.0.0"),
    ("semver_lte", "1.2.3"),
    ("semver_gt", "1.0.0"),
    ("semver_gte", "1.2.3"),
    ("before", "2026-06-01T00:00:00Z"),
    ("after", 0),
    ("exists", None),
    ("not_exists", None),
]

attribute_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 60),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(
        ["NL", "pro", "1.2.3", "2.0.0-rc.1", "2026-01-01T00:00:00Z", "35", "a@acme.com", "\ud800"]
    ),
    st.dictionaries(
        st.sampled_from(["plan", "x"]), st.sampled_from(["pro", "free", 3]), max_size=2
    ),
)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    op, value = draw(st.sampled_from(LEAVES))
    condition = {"attr": draw(st.sampled_from(ATTRIBUTES)), "op": op}
    return condition if value is None else {**condition, "value": value}


def conditions(segments: bool) -> st.SearchStrategy[dict[str, Any]]:
    base = leaves()
    if segments:
        base = base | st.sampled_from(SEGMENTS).map(lambda key: {"segment": key})
    return st.recursive(
        base,
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda children: {"all": children})
            | st.lists(inner, max_size=3).map(lambda children: {"any": children})
            | inner.map(lambda child: {"not": child})
        ),
        max_leaves=6,
    )


def serves() -> st.SearchStrategy[dict[str, Any]]:
    single = st.sampled_from(VARIANTS).map(lambda variant: {"variant": variant})
    split = st.lists(st.integers(0, 100), min_size=3, max_size=3).filter(any)
    return single | split.map(
        lambda weights: {
            "distribution": [
                {"variant": variant, "weight": weight}
                for variant, weight in zip(VARIANTS, weights, strict=True)
            ]
        }
    )


@st.composite
def flags(draw: st.DrawFn, index: int) -> dict[str, Any]:
    key = f"f{index}"
    others = [f"f{n}" for n in range(FLAG_COUNT + 1) if n != index]  # the last one never exists
    required = draw(st.lists(st.sampled_from(others), unique=True, max_size=2))
    if index + 1 < FLAG_COUNT and draw(st.integers(0, 3)):  # mostly a chain f0 -> f1 -> ...
        required = [f"f{index + 1}", *(other for other in required if other != f"f{index + 1}")]
    weights = draw(st.lists(st.integers(0, 100), min_size=3, max_size=3).filter(any))
    return {
        "key": key,
        "type": "string",
        "state": draw(st.sampled_from(["on", "on", "on", "off"])),
        "variants": [
            {"key": variant, "value": f"value-{variant}", "weight": weight}
            for variant, weight in zip(VARIANTS, weights, strict=True)
        ],
        "off_variant": draw(st.sampled_from(VARIANTS)),
        "targets": {
            "deny": draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2)),
            "allow": draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2)),
            "allow_variant": draw(st.sampled_from(VARIANTS)),
        },
        "prerequisites": [
            {
                "flag": other,
                "variants": draw(st.lists(st.sampled_from(VARIANTS), unique=True, min_size=1)),
            }
            for other in required
        ],
        "rules": [
            {"id": f"{key}-r{n}", "when": when, "serve": draw(serves())}
            for n, when in enumerate(draw(st.lists(conditions(segments=True), max_size=3)))
        ],
        "default": draw(st.none() | serves()),
        "bucket_by": draw(st.sampled_from(["id", "id", "plan", "org.plan", "age"])),
    }


@st.composite
def rulesets(draw: st.DrawFn) -> Any:
    segments = [
        validate_segment(
            {
                "key": key,
                "included": draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2)),
                "excluded": draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2)),
                "when": draw(st.none() | conditions(segments=False)),
            }
        )
        for key in SEGMENTS
    ]
    count = draw(st.integers(1, FLAG_COUNT))
    documents = [validate_flag(draw(flags(n)), segment_keys=SEGMENTS) for n in range(count)]
    return compile_ruleset(
        tenant=draw(st.sampled_from(["acme", "glöbex"])),
        version="1",
        flags=[{**doc, "version": 3} for doc in documents],
        segments=[{**doc, "version": 1} for doc in segments],
    )


users = st.builds(
    lambda user_id, attributes: user(user_id, **attributes),
    st.sampled_from(IDS)
    | st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
    st.dictionaries(st.sampled_from([a for a in ATTRIBUTES if "." not in a]), attribute_values)
    | st.fixed_dictionaries({"org": attribute_values}),
)


def _answer(result: EvaluationResult) -> dict[str, Any]:
    body = result.to_dict()
    body.pop("trace", None)
    return {**body, "bucket": result.bucket}


def _deciding_step(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """The last step: the walk stops at the one that decided."""
    return trace[-1]


def test_generated_flags__cover_every_operator_and_step() -> None:
    assert {op for op, _ in LEAVES} == OPERATORS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rulesets(), who=st.lists(users, min_size=1, max_size=3))
def test_trace__whole_generated_flags__same_answer_as_untraced(rules: Any, who: list[Any]) -> None:
    for person in who:
        for key in rules.flags:
            fast = evaluate(rules, key, person)
            traced = evaluate(rules, key, person, trace=True)
            assert fast.trace is None
            assert traced.trace is not None
            assert _answer(traced) == _answer(fast)
            last = _deciding_step(traced.trace)
            if fast.reason == "PREREQUISITE_FAILED":
                assert (last["step"], last["outcome"]) == ("prerequisite", False)
                assert last["flag"] == fast.details["prerequisite"]
            elif fast.error_code is None:
                assert last["variant"] == fast.variant
                assert last["outcome"] is True
                assert last.get("rule_id") == fast.rule_id
                if "bucket" in last:
                    assert last["bucket"] == fast.bucket
            else:
                assert (last["step"], last["error_code"]) == ("default", "NOT_BUCKETABLE")


def test_bucket_formula__written_once_in_the_engine() -> None:
    """rules.md "Bucketing" has one implementation, ``bucketing.bucket_of``; everything calls it."""
    engine = Path(bucketing.__file__).with_suffix(".py").parent
    if not engine.joinpath("bucketing.py").exists():
        pytest.skip("the installed build ships no sources to read")
    writers = {
        source.name
        for source in engine.glob("*.py")
        for line in source.read_text(encoding="utf-8").splitlines()
        if re.search(r"mmh3\.hash|_hash\(|4294967296|2\s*\*\*\s*32", line.split("#")[0])
        and not line.lstrip().startswith(('"""', "``"))
    }
    assert writers == {"bucketing.py"}


def test_trace__the_walk_lives_in_evaluation_alone() -> None:
    """``tracing`` shapes steps; it never decides one (no predicate, bucket, split or depth cap)."""
    engine = Path(bucketing.__file__).with_suffix(".py").parent
    if not engine.joinpath("tracing.py").exists():
        pytest.skip("the installed build ships no sources to read")
    source = engine.joinpath("tracing.py").read_text(encoding="utf-8")
    for decision in (
        "pick_index",
        ".when(",
        "bucket_position",
        "MAX_PREREQUISITE_DEPTH",
        "def trace_flag",
    ):
        assert decision not in source
