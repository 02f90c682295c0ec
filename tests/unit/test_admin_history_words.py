"""A flag change in words (flags.admin.history): per rule, variant, target, state; rollback detection."""

from __future__ import annotations

import re
from typing import Any

from flags.admin.history import content_of, flag_changes, restored_version

RULE = {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}


def flag(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "checkout",
        "name": "Checkout",
        "description": "",
        "type": "boolean",
        "state": "off",
        "variants": [
            {"key": "on", "value": True, "weight": 20},
            {"key": "off", "value": False, "weight": 80},
        ],
        "off_variant": "off",
        "targets": {"allow": [], "allow_variant": None, "deny": []},
        "rules": [],
        "default": None,
        "prerequisites": [],
        "bucket_by": "id",
        "tags": [],
        "version": 1,
        "updated_at": "2026-12-01T10:00:00Z",
    }
    return {**base, **fields}


def words(value: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(value))).replace(" ,", ",").strip()


def read(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (c.kind, c.subject, words(c.before or ""), words(c.after or "")) for c in flag_changes(before, after)
    ]


def test_state_change() -> None:
    assert read(flag(), flag(state="on")) == [("changed", "State", "off", "on")]


def test_rollout_change__per_variant_in_percent_and_everyone_else() -> None:
    after = flag(
        variants=[{"key": "on", "value": True, "weight": 50}, {"key": "off", "value": False, "weight": 50}]
    )
    assert read(flag(), after) == [
        ("changed", "Variant on", "20 %", "50 %"),
        ("changed", "Variant off", "80 %", "50 %"),
        ("changed", "Everyone else", "20 % on, 80 % off", "50 % on, 50 % off"),
    ]


def test_variant_added_removed_and_value_changed() -> None:
    before = flag(
        type="string",
        variants=[{"key": "a", "value": "x", "weight": 1}, {"key": "b", "value": "y", "weight": 1}],
    )
    after = flag(
        type="string",
        variants=[{"key": "a", "value": "z", "weight": 1}, {"key": "c", "value": "w", "weight": 1}],
    )
    changes = read(before, after)
    assert ("changed", "Variant a: value", "x", "z") in changes
    assert ("added", "Variant c", "", "w, weight 50 %") in changes
    assert ("removed", "Variant b", "y", "") in changes


def test_rules__added_removed_changed_and_moved_by_id_in_words() -> None:
    other = {"id": "pro", "when": {"attr": "plan", "op": "eq", "value": "pro"}, "serve": {"variant": "on"}}
    assert read(flag(), flag(rules=[RULE])) == [("added", "Rule nl", "", "nl If country is NL → serve on")]
    assert read(flag(rules=[RULE]), flag()) == [("removed", "Rule nl", "nl If country is NL → serve on", "")]
    split = {
        **RULE,
        "serve": {"distribution": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]},
    }
    assert read(flag(rules=[RULE]), flag(rules=[split])) == [
        (
            "changed",
            "Rule nl",
            "nl If country is NL → serve on",
            "nl If country is NL → serve 30 % on, 70 % off",
        )
    ]
    assert read(flag(rules=[RULE, other]), flag(rules=[other, RULE])) == [
        ("moved", "Rule order (first match wins)", "nl, pro", "pro, nl")
    ]


def test_targets__ids_added_and_removed_and_the_allowed_variant() -> None:
    before = flag(targets={"allow": ["u-1", "u-2"], "allow_variant": None, "deny": []})
    after = flag(targets={"allow": ["u-2", "u-3"], "allow_variant": "on", "deny": ["u-9"]})
    assert read(before, after) == [
        ("added", "Allow list", "", "u-3"),
        ("removed", "Allow list", "u-1", ""),
        ("added", "Deny list", "", "u-9"),
        ("changed", "Allowed users get", "(the default)", "on"),
    ]


def test_default_prerequisites_and_plain_fields() -> None:
    after = flag(
        default={"variant": "on"},
        prerequisites=[{"flag": "base", "variants": ["on"]}],
        name="Checkout v2",
        tags=["team:pay"],
        bucket_by="account_id",
    )
    assert read(flag(), after) == [
        ("added", "Prerequisite base", "", "must give on"),
        ("changed", "Everyone else", "20 % on, 80 % off", "on"),
        ("changed", "Name", "Checkout", "Checkout v2"),
        ("changed", "Splits place users by", "user id", "account_id"),
        ("changed", "Tags", "none", "team:pay"),
    ]


def test_bookkeeping_alone_is_no_change() -> None:
    assert (
        read(flag(), flag(version=2, updated_at="2026-12-02T00:00:00Z", archived_at="2026-12-02T00:00:00Z"))
        == []
    )


def test_restored_version__the_newest_earlier_version_with_the_same_content() -> None:
    v1, v2, v3 = flag(), flag(state="on", version=2), flag(state="on", name="X", version=3)
    earlier = {1: v1, 2: v2, 3: v3}
    assert restored_version(flag(version=4), earlier) == 1
    assert restored_version(flag(state="on", version=4), earlier) == 2
    assert restored_version(flag(state="on", name="Y", version=4), earlier) is None
    assert content_of(v1) == content_of(flag(version=9)), "versions and dates are not content"
