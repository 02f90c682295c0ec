"""``recompile`` answers exactly as a full ``compile_ruleset`` of the same definitions.

The property: after any sequence of writes (flags created, updated, archived and restored, with
prerequisites and segment references; segments created, updated and deleted), applied in batches as
a process catching up on several changes at once does, evaluating every flag for every user gives
the same answers from the ruleset built step by step as from one compiled from scratch.
"""

from __future__ import annotations

from typing import Any

import pytest
from builders import user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagsvc_sdk.engine import (
    CompiledRuleset,
    InvalidDefinition,
    compile_ruleset,
    evaluate,
    evaluate_many,
    recompile,
    validate_flag,
    validate_segment,
)

TENANT = "acme"
FLAG_KEYS = [f"f{n}" for n in range(5)]
SEGMENT_KEYS = [f"s{n}" for n in range(3)]
USER_IDS = [f"u{n}" for n in range(12)]
USERS = [
    user(user_id, country=country, plan=plan)
    for user_id in USER_IDS
    for country, plan in (("NL", "pro"), ("DE", "free"))
] + [user("u1"), user("u7", country="NL")]

ids = st.lists(st.sampled_from(USER_IDS), max_size=3, unique=True)
variant = st.sampled_from(["on", "off"])


@st.composite
def conditions(draw: st.DrawFn, segments: list[str], depth: int = 0) -> dict[str, Any]:
    leaves: list[st.SearchStrategy[dict[str, Any]]] = [
        st.builds(
            lambda c: {"attr": "country", "op": "eq", "value": c}, st.sampled_from(["NL", "DE"])
        ),
        st.builds(
            lambda p: {"attr": "plan", "op": "in", "value": [p]}, st.sampled_from(["pro", "free"])
        ),
    ]
    if segments:  # twice as likely as the others: segment updates must reach the flags using them
        segment = st.builds(lambda s: {"segment": s}, st.sampled_from(segments))
        leaves += [segment, segment]
    if depth >= 2:
        return draw(st.one_of(leaves))
    kind = draw(st.sampled_from(["leaf", "leaf", "all", "any", "not"]))
    if kind == "leaf":
        return draw(st.one_of(leaves))
    if kind == "not":
        return {"not": draw(conditions(segments, depth + 1))}
    return {kind: draw(st.lists(conditions(segments, depth + 1), min_size=1, max_size=3))}


@st.composite
def flag_documents(draw: st.DrawFn, key: str, segments: list[str]) -> dict[str, Any]:
    rules = []
    for index in range(draw(st.integers(0, 3)) if draw(st.booleans()) else 2):
        if draw(st.booleans()):
            serve: dict[str, Any] = {"variant": draw(variant)}
        else:
            on = draw(st.integers(0, 100))
            serve = {
                "distribution": [
                    {"variant": "on", "weight": on},
                    {"variant": "off", "weight": 100 - on},
                ]
            }
        rules.append({"id": f"r{index}", "when": draw(conditions(segments)), "serve": serve})
    others = [other for other in FLAG_KEYS if other != key]
    prerequisites = [
        {"flag": other, "variants": [draw(variant)]}
        for other in draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
    ]
    allow = draw(ids)
    return validate_flag(
        {
            "key": key,
            "state": draw(st.sampled_from(["on", "on", "off"])),
            "rules": rules,
            "prerequisites": prerequisites,
            "targets": {
                "allow": allow,
                "deny": [i for i in draw(ids) if i not in allow],
                "allow_variant": "on" if allow else None,
            },
        },
        segment_keys=segments,
    )


@st.composite
def segment_documents(draw: st.DrawFn, key: str) -> dict[str, Any]:
    included = draw(ids)
    return validate_segment(
        {
            "key": key,
            "included": included,
            "excluded": [i for i in draw(ids) if i not in included],
            "when": draw(st.one_of(st.none(), conditions([], 1))),
        }
    )


class Model:
    """The definitions as a store holds them; the reference a full compile starts from."""

    def __init__(self) -> None:
        self.flags: dict[str, dict[str, Any]] = {}  # key → document with "version"
        self.archived: set[str] = set()
        self.segments: dict[str, dict[str, Any]] = {}
        self.version = 0

    def live_referrers(self, segment: str) -> list[str]:
        return [
            key
            for key, doc in self.flags.items()
            if key not in self.archived and f"'segment': '{segment}'" in repr(doc["rules"])
        ]

    def full(self) -> CompiledRuleset:
        return compile_ruleset(
            tenant=TENANT,
            version=str(self.version),
            flags=[doc for key, doc in self.flags.items() if key not in self.archived],
            segments=list(self.segments.values()),
        )


@st.composite
def write(draw: st.DrawFn, model: Model) -> tuple[str, str]:
    """Apply one random valid write to ``model``; returns (kind, key) of what it changed."""
    choice = draw(
        st.sampled_from(["flag", "flag", "archive", "restore", "segment", "segment", "delete"])
    )
    if choice == "segment":
        key = draw(st.sampled_from(SEGMENT_KEYS))
        version = self_version(model.segments.get(key))
        model.segments[key] = {**draw(segment_documents(key)), "version": version}
        return "segment", key
    if choice == "delete":
        unused = [key for key in model.segments if not model.live_referrers(key)]
        if unused:
            key = draw(st.sampled_from(unused))
            del model.segments[key]
            return "segment", key
    if choice == "archive":
        live = [key for key in model.flags if key not in model.archived]
        if live:
            key = draw(st.sampled_from(live))
            model.archived.add(key)
            return "flag", key
    if choice == "restore":
        restorable = [
            key
            for key in model.archived
            if all(
                f"'segment': '{s}'" not in repr(model.flags[key]["rules"])
                for s in SEGMENT_KEYS
                if s not in model.segments
            )
        ]
        if restorable:
            key = draw(st.sampled_from(sorted(restorable)))
            model.archived.discard(key)
            return "flag", key
    key = draw(st.sampled_from(FLAG_KEYS))
    model.archived.discard(key)
    version = self_version(model.flags.get(key))
    model.flags[key] = {**draw(flag_documents(key, sorted(model.segments))), "version": version}
    return "flag", key


def self_version(doc: dict[str, Any] | None) -> int:
    return 1 if doc is None else doc["version"] + 1


def catch_up(
    model: Model, compiled: CompiledRuleset, changed: set[tuple[str, str]]
) -> CompiledRuleset:
    """What a process that learns which keys changed does: the current definitions of those keys."""
    flag_keys = {key for kind, key in changed if kind == "flag"}
    segment_keys = {key for kind, key in changed if kind == "segment"}
    return recompile(
        compiled,
        version=str(model.version),
        flags=[
            model.flags[key]
            for key in flag_keys
            if key in model.flags and key not in model.archived
        ],
        removed_flags=[key for key in flag_keys if key not in model.flags or key in model.archived],
        segments=[model.segments[key] for key in segment_keys if key in model.segments],
        removed_segments=[key for key in segment_keys if key not in model.segments],
    )


def answers(ruleset: CompiledRuleset) -> list[Any]:
    every_flag = [*FLAG_KEYS, "missing"]
    return [
        list(ruleset.flags),
        list(ruleset.segments),
        ruleset.version,
        *[
            {key: result.to_dict() for key, result in evaluate_many(ruleset, who).items()}
            for who in USERS
        ],
        *[
            {key: evaluate(ruleset, key, who, trace=True).to_dict() for key in every_flag}
            for who in USERS[:4]
        ],
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_recompile__answers_as_a_full_compile_after_any_sequence_of_writes(
    data: st.DataObject,
) -> None:
    model = Model()
    compiled = model.full()
    # A first batch that creates every segment and flag, so that later writes have users to reach.
    for key in SEGMENT_KEYS:
        model.segments[key] = {**data.draw(segment_documents(key)), "version": 1}
    for key in FLAG_KEYS:
        model.flags[key] = {**data.draw(flag_documents(key, SEGMENT_KEYS)), "version": 1}
    model.version += 1
    everything = {("segment", key) for key in SEGMENT_KEYS} | {("flag", key) for key in FLAG_KEYS}
    compiled = catch_up(model, compiled, everything)
    assert answers(compiled) == answers(model.full())
    for _ in range(data.draw(st.integers(1, 8), label="batches")):
        changed = {
            data.draw(write(model)) for _ in range(data.draw(st.integers(1, 4), label="writes"))
        }
        model.version += 1
        compiled = catch_up(model, compiled, changed)
        assert answers(compiled) == answers(model.full())


def test_recompile__a_segment_update_recompiles_the_flags_that_use_it() -> None:
    segment = {**validate_segment({"key": "beta", "included": ["u1"]}), "version": 1}
    flag = {
        **validate_flag(
            {
                "key": "new-ui",
                "state": "on",
                "rules": [{"id": "beta", "when": {"segment": "beta"}, "serve": {"variant": "on"}}],
                "default": {"variant": "off"},
            },
            segment_keys=["beta"],
        ),
        "version": 1,
    }
    before = compile_ruleset(tenant=TENANT, version="1", flags=[flag], segments=[segment])
    assert evaluate(before, "new-ui", user("u2")).variant == "off"
    moved = {**validate_segment({"key": "beta", "included": ["u2"]}), "version": 2}
    after = recompile(before, version="2", segments=[moved])
    assert evaluate(after, "new-ui", user("u2")).variant == "on"
    assert evaluate(before, "new-ui", user("u2")).variant == "off"  # the old ruleset is unchanged
    assert after.version == "2"


def test_recompile__leaves_unaffected_flags_as_they_were_compiled() -> None:
    docs = [{**validate_flag({"key": key, "state": "on"}), "version": 1} for key in ("a", "b", "c")]
    before = compile_ruleset(tenant=TENANT, version="1", flags=docs, segments=[])
    after = recompile(
        before, version="2", flags=[{**validate_flag({"key": "b", "state": "off"}), "version": 2}]
    )
    assert after.flags["a"] is before.flags["a"]
    assert after.flags["c"] is before.flags["c"]
    assert after.flags["b"] is not before.flags["b"]
    assert list(after.flags) == ["a", "b", "c"]


def test_recompile__refuses_a_flag_left_referring_to_a_removed_segment() -> None:
    segment = {**validate_segment({"key": "beta", "included": ["u1"]}), "version": 1}
    flag = {
        **validate_flag(
            {
                "key": "x",
                "rules": [{"id": "r", "when": {"segment": "beta"}, "serve": {"variant": "on"}}],
            },
            segment_keys=["beta"],
        ),
        "version": 1,
    }
    before = compile_ruleset(tenant=TENANT, version="1", flags=[flag], segments=[segment])
    with pytest.raises(InvalidDefinition):
        recompile(before, version="2", removed_segments=["beta"])
    assert "beta" in before.segments


def test_recompile__refuses_a_flag_key_given_twice() -> None:
    before = compile_ruleset(tenant=TENANT, version="1", flags=[], segments=[])
    doc = {**validate_flag({"key": "a"}), "version": 1}
    with pytest.raises(InvalidDefinition):
        recompile(before, version="2", flags=[doc, doc])


def test_compile_ruleset__holds_flags_in_key_order_whatever_the_input_order() -> None:
    docs = [{**validate_flag({"key": key}), "version": 1} for key in ("b", "a", "C")]
    assert list(compile_ruleset(tenant=TENANT, version="1", flags=docs, segments=[]).flags) == [
        "C",
        "a",
        "b",
    ]
