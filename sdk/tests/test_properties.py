"""Property tests of bucketing and evaluation (style.md "Tests": hypothesis for both)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from builders import ruleset, user
from hypothesis import given, settings
from hypothesis import strategies as st

from flagsvc_sdk.engine import (
    EvaluationResult,
    bucket,
    compile_ruleset,
    evaluate,
    evaluate_many,
    validate_flag,
)
from flagsvc_sdk.engine.bucketing import pick_index, thresholds

keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
ids = st.text(min_size=1, max_size=40)
tenants = st.text(min_size=1, max_size=20)


def rollout(percentage: float, key: str = "rollout", tenant: str = "acme") -> Any:
    """A boolean flag that serves ``on`` to ``percentage`` % of users."""
    serve = {
        "distribution": [
            {"variant": "on", "weight": percentage},
            {"variant": "off", "weight": 100 - percentage},
        ]
    }
    return ruleset({"key": key, "state": "on", "default": serve}, tenant=tenant)


@given(tenant=tenants, key=keys, value=ids)
def test_bucket__deterministic_and_in_unit_interval(tenant: str, key: str, value: str) -> None:
    first = bucket(tenant, key, value)
    assert first == bucket(tenant, key, value)
    assert 0.0 <= first < 1.0


@given(key=keys, user_id=ids, country=st.sampled_from(["NL", "BE", "DE"]))
def test_evaluate__same_answer_from_independently_compiled_rulesets(
    key: str, user_id: str, country: str
) -> None:
    doc = {
        "key": key,
        "state": "on",
        "rules": [
            {
                "id": "nl",
                "when": {"attr": "country", "op": "eq", "value": "NL"},
                "serve": {"variant": "on"},
            }
        ],
        "default": {
            "distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 2}]
        },
    }
    who = user(user_id, country=country)
    first = evaluate(ruleset(doc), key, who).to_dict()
    assert first == evaluate(ruleset(doc), key, who).to_dict()
    assert first == evaluate_many(ruleset(doc), who)[key].to_dict()


CHI_SQUARE_CRITICAL_99_DF_P001 = 148.23
"""Upper 0.1 % point of chi-square with 99 degrees of freedom (Wilson-Hilferty gives 148.28)."""


def test_bucket__uniform_over_100_buckets_chi_square() -> None:
    """100,000 ids into 100 equal buckets: the statistic stays under the p = 0.001 critical value.

    Deterministic ids, so the test cannot flake; a biased hash or a wrong scale would fail it.
    """
    users, cells = 100_000, 100
    for tenant, key in (("acme", "checkout-redesign"), ("globex", "new-search")):
        counts = [0] * cells
        for n in range(users):
            counts[int(bucket(tenant, key, f"user-{n}") * cells)] += 1
        expected = users / cells
        statistic = sum((observed - expected) ** 2 / expected for observed in counts)
        assert statistic < CHI_SQUARE_CRITICAL_99_DF_P001, (tenant, key, statistic)


@settings(max_examples=60)
@given(
    low=st.integers(min_value=0, max_value=100),
    high=st.integers(min_value=0, max_value=100),
    user_ids=st.lists(ids, min_size=1, max_size=30),
)
def test_rollout__raising_the_percentage_keeps_everyone_who_was_in(
    low: int, high: int, user_ids: list[str]
) -> None:
    low, high = min(low, high), max(low, high)
    before, after = rollout(low), rollout(high)
    for user_id in user_ids:
        if evaluate(before, "rollout", user(user_id)).variant == "on":
            assert evaluate(after, "rollout", user(user_id)).variant == "on"


@settings(max_examples=60)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=6).filter(any),
    factor=st.integers(min_value=1, max_value=10_000),
    user_ids=st.lists(ids, min_size=1, max_size=20),
)
def test_weights__scaling_every_weight_keeps_every_assignment(
    weights: list[int], factor: int, user_ids: list[str]
) -> None:
    """Integer weights times an integer factor give the same ``cum / total`` rationals, hence the
    same doubles: the assignment cannot move. (Arbitrary float factors could move a bucket lying
    within one rounding step of a threshold, which the normative walk allows.)"""

    def split(scale: int) -> Any:
        variants = [
            {"key": f"v{n}", "value": f"v{n}", "weight": weight * scale}
            for n, weight in enumerate(weights)
        ]
        return ruleset(
            {
                "key": "split",
                "type": "string",
                "state": "on",
                "variants": variants,
                "off_variant": "v0",
            }
        )

    plain, scaled = split(1), split(factor)
    for user_id in user_ids:
        assert (
            evaluate(plain, "split", user(user_id)).variant
            == evaluate(scaled, "split", user(user_id)).variant
        )


def test_tenants__bucket_independently() -> None:
    """The same flag key and users in two tenants agree on a 50/50 split about half the time."""
    users = 10_000
    first, second = rollout(50, tenant="acme"), rollout(50, tenant="globex")
    agreed = sum(
        evaluate(first, "rollout", who).variant == evaluate(second, "rollout", who).variant
        for who in (user(f"user-{n}") for n in range(users))
    )
    assert 0.47 < agreed / users < 0.53


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-100, 100)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars
    | st.sampled_from(["NL", "pro", "1.2.3", "2026-01-01T00:00:00Z", "35", "a@acme.com"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["plan", "x"]), inner, max_size=2)
    ),
    max_leaves=6,
)
attribute_names = st.sampled_from(["country", "plan", "age", "org.plan", "id", "email", "version"])
LEAVES = [
    ("eq", "NL"),
    ("eq", 35),
    ("eq", True),
    ("neq", "NL"),
    ("in", ["NL", 35, True]),
    ("in", ["NL", "pro"]),
    ("regex", "^NL$"),
    ("regex", "^p"),
    ("not_in", ["pro"]),
    ("contains", "a"),
    ("contains", 1),
    ("starts_with", "N"),
    ("ends_with", "com"),
    ("regex", r"^[a-z]+@acme\.com$"),
    ("regex", "L"),
    ("lt", 40),
    ("gte", 30),
    ("between", [30, 40]),
    ("semver_gt", "1.0.0"),
    ("semver_eq", "1.2.3"),
    ("before", "2026-06-01T00:00:00Z"),
    ("after", 0),
    ("exists", None),
    ("not_exists", None),
]


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    op, value = draw(st.sampled_from(LEAVES))
    condition = {"attr": draw(attribute_names), "op": op}
    return condition if op in ("exists", "not_exists") else {**condition, "value": value}


conditions = st.recursive(
    leaves(),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda children: {"all": children})
        | st.lists(inner, max_size=3).map(lambda children: {"any": children})
        | inner.map(lambda child: {"not": child})
    ),
    max_leaves=8,
)


@settings(max_examples=150)
@given(
    whens=st.lists(conditions, min_size=1, max_size=3),
    attributes=st.dictionaries(
        st.sampled_from(["country", "plan", "age", "org", "email", "version"]), json_values
    ),
    user_id=ids,
)
def test_traced_and_fast_paths__agree_and_never_raise(
    whens: list[dict[str, Any]], attributes: dict[str, Any], user_id: str
) -> None:
    doc = {
        "key": "f",
        "state": "on",
        "rules": [
            {"id": f"r{n}", "when": when, "serve": {"variant": "on"}}
            for n, when in enumerate(whens)
        ],
        "default": {"variant": "off"},
    }
    rules = ruleset(doc)
    who = user(user_id, **attributes)
    fast: EvaluationResult = evaluate(rules, "f", who)
    traced = evaluate(rules, "f", who, trace=True)
    assert {**traced.to_dict(), "trace": None} == {**fast.to_dict(), "trace": None}
    assert traced.trace is not None
    matched = [
        step["rule_id"] for step in traced.trace if step["step"] == "rule" and step["outcome"]
    ]
    assert matched == ([fast.rule_id] if fast.rule_id else [])


@given(
    whens=st.lists(conditions, max_size=3),
    # Storable text: NUL and lone surrogates are refused (test_validation.py, "portable").
    tags=st.lists(
        st.text(
            st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
            min_size=1,
            max_size=5,
        ),
        unique=True,
        max_size=4,
    ),
)
def test_validate_flag__is_idempotent(whens: list[dict[str, Any]], tags: list[str]) -> None:
    doc = {
        "key": "f",
        "rules": [
            {"id": f"r{n}", "when": when, "serve": {"variant": "on"}}
            for n, when in enumerate(whens)
        ],
        "tags": tags,
    }
    once = validate_flag(doc)
    assert validate_flag(once) == once
    compile_ruleset(tenant="acme", version="1", flags=[{**once, "version": 1}], segments=[])


@given(
    weights=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=8).filter(any),
    position=st.one_of(
        st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
        st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9999999999999999]),
    ),
)
def test_pick_index__agrees_with_bisect_right_on_every_split(
    weights: list[int], position: float
) -> None:
    """The evaluation loop picks exactly the entry ``bisect_right`` would (ties, zero weights)."""
    shares = thresholds(weights)
    assert pick_index(shares, position) == bisect_right(shares, position)
    for share in shares:  # each threshold itself and its neighbours are the edge cases
        assert pick_index(shares, share) == bisect_right(shares, share)
