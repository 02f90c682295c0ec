"""Flags and segments in words (flags.admin.in_words): every operator, groups, splits, targets, links."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flags.admin.in_words import (
    Links,
    condition_html,
    flag_in_words,
    rule_html,
    segment_in_words,
    serve_words,
)
from flags.admin.vocabulary import OPERATORS

VARIANTS = [{"key": "on", "value": True, "weight": 20}, {"key": "off", "value": False, "weight": 80}]


def text(html: str) -> str:
    """The words a person reads: tags dropped, whitespace collapsed."""
    spaced = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(html)))
    return re.sub(r" ([,.:)])", r"\1", spaced).strip()


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ({"attr": "country", "op": "eq", "value": "NL"}, "country is NL"),
        ({"attr": "country", "op": "neq", "value": "NL"}, "country is not NL"),
        ({"attr": "country", "op": "in", "value": ["NL", "BE"]}, "country is one of NL, BE"),
        ({"attr": "country", "op": "not_in", "value": ["NL"]}, "country is not one of NL"),
        ({"attr": "tags", "op": "contains", "value": "vip"}, "tags contains vip"),
        ({"attr": "email", "op": "starts_with", "value": "ann"}, "email starts with ann"),
        ({"attr": "email", "op": "ends_with", "value": "@acme.test"}, "email ends with @acme.test"),
        ({"attr": "email", "op": "regex", "value": "^a.*z$"}, "email matches the pattern ^a.*z$"),
        ({"attr": "age", "op": "lt", "value": 18}, "age is less than 18"),
        ({"attr": "age", "op": "lte", "value": 18}, "age is at most 18"),
        ({"attr": "age", "op": "gt", "value": 65}, "age is more than 65"),
        ({"attr": "age", "op": "gte", "value": 65}, "age is at least 65"),
        (
            {"attr": "age", "op": "between", "value": [18, 65]},
            "age is between 18 and 65 (from 18 up to, not including, 65)",
        ),
        ({"attr": "app_version", "op": "semver_eq", "value": "2.1.0"}, "app_version version is 2.1.0"),
        ({"attr": "app_version", "op": "semver_lt", "value": "2.1.0"}, "app_version version is below 2.1.0"),
        (
            {"attr": "app_version", "op": "semver_lte", "value": "2.1.0"},
            "app_version version is at most 2.1.0",
        ),
        ({"attr": "app_version", "op": "semver_gt", "value": "2.1.0"}, "app_version version is above 2.1.0"),
        (
            {"attr": "app_version", "op": "semver_gte", "value": "2.10.0"},
            "app_version version is at least 2.10.0",
        ),
        (
            {"attr": "signup", "op": "before", "value": "2026-12-01T10:05:00Z"},
            "signup is before 2026-12-01 10:05 UTC",
        ),
        ({"attr": "signup", "op": "after", "value": 0}, "signup is after 1970-01-01 00:00 UTC"),
        ({"attr": "plan", "op": "exists"}, "plan is set"),
        ({"attr": "plan", "op": "not_exists"}, "plan is not set"),
        ({"attr": "id", "op": "eq", "value": "u-1"}, "user id is u-1"),
        ({"attr": "beta", "op": "eq", "value": True}, "beta is true"),
    ],
)
def test_condition_in_words__each_operator(condition: dict[str, Any], words: str) -> None:
    assert text(condition_html(condition)) == words


def test_condition_in_words__covers_every_operator_of_the_vocabulary() -> None:
    for entry in OPERATORS:
        html = str(condition_html({"attr": "a", "op": entry["op"], "value": ["1", "2"]}))
        assert entry["words"] in html


def test_groups__all_any_not_nested_as_lists() -> None:
    condition = {
        "all": [
            {"any": [{"attr": "country", "op": "eq", "value": "NL"}, {"segment": "beta"}]},
            {"not": {"attr": "plan", "op": "eq", "value": "free"}},
        ]
    }
    html = str(condition_html(condition, Links.from_maps({"beta": "/admin/segments/segment/7/change/"}, {})))
    assert text(html) == (
        "all of these: any of these: country is NL user is in segment beta not: plan is free"
    )
    assert html.count("<ul") == 2
    assert '<a href="/admin/segments/segment/7/change/">beta</a>' in html


def test_empty_groups__say_always_and_never() -> None:
    assert text(condition_html({"all": []})).startswith("always")
    assert text(condition_html({"any": []})).startswith("never")


def test_values_are_escaped() -> None:
    html = str(condition_html({"attr": "<b>", "op": "eq", "value": "<script>x</script>"}))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


@pytest.mark.parametrize(
    ("serve", "words"),
    [
        ({"variant": "on"}, "on"),
        (
            {"distribution": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]},
            "30 % on, 70 % off",
        ),
        (
            {"distribution": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 7}]},
            "12.5 % on, 87.5 % off",
        ),
        (None, "20 % on, 80 % off"),
        ({"distribution": [{"variant": "on", "weight": 100}, {"variant": "off", "weight": 0}]}, "on"),
    ],
)
def test_serve_in_words__variant_or_percentages(serve: Any, words: str) -> None:
    assert serve_words(serve, VARIANTS) == words


def test_rule_in_words__if_condition_then_serve() -> None:
    rule = {
        "id": "benelux",
        "description": "Launch markets",
        "when": {"attr": "country", "op": "in", "value": ["NL", "BE"]},
        "serve": {"variant": "on"},
    }
    assert text(rule_html(rule, VARIANTS)) == "benelux Launch markets If country is one of NL, BE → serve on"


def test_flag_in_words__state_prerequisites_targets_rules_everyone_else_variants() -> None:
    document = {
        "type": "boolean",
        "state": "on",
        "variants": VARIANTS,
        "off_variant": "off",
        "targets": {"allow": ["u-1"], "allow_variant": None, "deny": ["u-666"]},
        "rules": [{"id": "staff", "when": {"segment": "internal"}, "serve": {"variant": "on"}}],
        "default": None,
        "prerequisites": [{"flag": "new-payments", "variants": ["on"]}],
        "bucket_by": "account_id",
    }
    links = Links.from_maps({"internal": "/s/1/"}, {"new-payments": "/f/2/"})
    words = text(flag_in_words(document, links))
    assert "On: users get what the sections below say, in order." in words
    assert "Only when flag new-payments gives on; otherwise off" in words
    assert "Always off (deny list): u-666" in words
    assert "Always on (allow list): u-1" in words
    assert "staff If user is in segment internal → serve on" in words
    assert "Everyone else: 20 % on, 80 % off (users are placed in a split by account_id)" in words
    assert "on true 20 %" in words and "off false 80 %" in words
    html = str(flag_in_words(document, links))
    assert '<a href="/f/2/">new-payments</a>' in html and '<a href="/s/1/">internal</a>' in html


def test_flag_in_words__off_and_archived_say_what_everyone_gets() -> None:
    document = {
        "state": "off",
        "variants": VARIANTS,
        "off_variant": "off",
        "rules": [],
        "default": {"variant": "on"},
    }
    assert "Off: everyone gets off." in text(flag_in_words(document))
    assert "Archived: not evaluated" in text(flag_in_words(document, archived=True))
    assert "No rules." in text(flag_in_words(document))


def test_segment_in_words__included_condition_excluded() -> None:
    words = text(
        segment_in_words(
            {
                "included": ["u-1", "u-2"],
                "excluded": ["u-9"],
                "when": {"attr": "plan", "op": "in", "value": ["pro"]},
            }
        )
    )
    assert words == (
        "Who is in this segment Always in: u-1, u-2 Anyone else for whom plan is one of pro Except: u-9"
    )
    assert "Nobody (no ids and no condition)." in text(segment_in_words({"included": [], "when": None}))
