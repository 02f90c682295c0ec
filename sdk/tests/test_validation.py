"""validate_flag: exact field paths, size caps and normalisation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from builders import flag, leaf

from flagsvc_sdk.engine import (
    PayloadTooLarge,
    ValidationFailed,
    validate_flag,
)

STRING_VARIANTS = [{"key": "a", "value": "A"}, {"key": "b", "value": "B", "weight": 1}]


def problems(doc: Any, **options: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(doc, **options)
    return raised.value.fields


def rule(when: Any, serve: Any = None, rule_id: str = "r") -> dict[str, Any]:
    return {"id": rule_id, "when": when, "serve": serve or {"variant": "on"}}


def condition_problems(when: Any, **options: Any) -> dict[str, list[str]]:
    return problems(flag(rules=[rule({"all": [leaf("country", "eq", "NL"), when]})]), **options)


def test_validate_flag__fills_defaults_for_a_minimal_boolean_flag() -> None:
    assert validate_flag({"key": "new-checkout"}) == {
        "key": "new-checkout",
        "name": "",
        "description": "",
        "type": "boolean",
        "state": "off",
        "variants": [
            {"key": "on", "value": True, "weight": 100},
            {"key": "off", "value": False, "weight": 0},
        ],
        "off_variant": "off",
        "targets": {"allow": [], "allow_variant": "on", "deny": []},
        "rules": [],
        "default": None,
        "prerequisites": [],
        "bucket_by": "id",
        "tags": [],
    }


def test_validate_flag__returns_a_new_document_and_leaves_the_input_alone() -> None:
    doc = flag(
        type="json",
        variants=[{"key": "a", "value": {"x": [1]}, "weight": 1}, {"key": "b", "value": []}],
        off_variant="b",
        rules=[rule({"attr": "plan", "op": "in", "value": ["pro"]}, {"variant": "a"})],
        targets={"allow": ["u-1"], "allow_variant": "a"},
    )
    before = copy.deepcopy(doc)
    normalised = validate_flag(doc)
    assert doc == before
    normalised["variants"][0]["value"]["x"].append(2)
    normalised["rules"][0]["when"]["value"].append("free")
    normalised["targets"]["allow"].append("u-2")
    assert doc == before


def test_validate_flag__non_object_and_unknown_fields() -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_flag(["not", "a", "flag"])  # type: ignore[arg-type]
    assert raised.value.fields == {"flag": ["must be a JSON object"]}
    fields = problems({"key": "k", "colour": "red", "version": 3})
    assert set(fields) == {"colour", "version"}
    assert "unknown field" in fields["colour"][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key", "has space"),
        ("key", "-leading-dash"),
        ("key", "x" * 129),
        ("key", 12),
        ("name", "n" * 201),
        ("description", "d" * 2001),
        ("type", "integer"),
        ("type", ["boolean"]),
        ("state", "paused"),
        ("bucket_by", ""),
        ("bucket_by", "org..id"),
        ("bucket_by", "a" * 129),
        ("tags", "checkout"),
    ],
)
def test_validate_flag__top_level_field_errors(field: str, value: Any) -> None:
    assert list(problems({"key": "k", field: value})) == [field]


def test_validate_flag__collects_every_problem() -> None:
    fields = problems(
        {
            "key": "bad key",
            "state": "maybe",
            "rules": [rule({"attr": "x", "op": "nope", "value": 1})],
            "tags": ["", "ok", "ok"],
        }
    )
    assert set(fields) == {"key", "state", "rules[0].when.op", "tags[0]", "tags[2]"}


def test_validate_flag__variant_errors() -> None:
    fields = problems(
        {
            "key": "k",
            "type": "number",
            "variants": [
                {"key": "a", "value": 1, "weight": -1},
                {"key": "a", "value": 2},
                {"key": "b", "value": "2"},
                {"key": "c", "value": True, "weight": True},
                {"key": "d", "value": float("inf")},
                {"key": "bad key", "value": 1},
                {"key": "e", "value": 1, "colour": "red"},
                "f",
            ],
            "off_variant": "a",
        }
    )
    assert set(fields) == {
        "variants[0].weight",
        "variants[1].key",
        "variants[2].value",
        "variants[3].value",
        "variants[3].weight",
        "variants[4].value",
        "variants[5].key",
        "variants[6].colour",
        "variants[7]",
    }


@pytest.mark.parametrize(
    ("flag_type", "good", "bad"),
    [
        ("boolean", False, 0),
        ("string", "x", 1),
        ("number", 1.5, True),
        ("json", {"a": 1}, "text"),
        ("json", [1, 2], 3),
    ],
)
def test_validate_flag__variant_value_must_match_the_flag_type(
    flag_type: str, good: Any, bad: Any
) -> None:
    variants = [{"key": "ok", "value": good}, {"key": "wrong", "value": bad}]
    doc = {
        "key": "k",
        "type": flag_type,
        "variants": variants,
        "off_variant": "ok",
        "default": {"variant": "ok"},
    }
    fields = problems(doc)
    assert list(fields) == ["variants[1].value"]


def test_validate_flag__variants_required_for_non_boolean_and_capped() -> None:
    assert list(problems({"key": "k", "type": "string", "off_variant": "a"})) == ["variants"]
    assert "variants" in problems({"key": "k", "variants": []})
    many = [{"key": f"v{n}", "value": n % 2 == 0, "weight": 1} for n in range(101)]
    assert "variants" in problems({"key": "k", "variants": many, "off_variant": "v0"})


def test_validate_flag__off_variant_required_or_must_exist() -> None:
    base = {"key": "k", "type": "string", "variants": STRING_VARIANTS}
    assert list(problems(base)) == ["off_variant"]
    assert list(problems({**base, "off_variant": "zzz"})) == ["off_variant"]
    custom_boolean = [{"key": "yes", "value": True, "weight": 1}, {"key": "no", "value": False}]
    assert list(problems({"key": "k", "variants": custom_boolean})) == ["off_variant"]


def test_validate_flag__targets_errors() -> None:
    base = {"key": "k", "type": "string", "variants": STRING_VARIANTS, "off_variant": "a"}
    assert list(problems({**base, "targets": {"allow": ["u-1"]}})) == ["targets.allow_variant"]
    assert list(problems({**base, "targets": {"allow": ["u-1"], "allow_variant": "z"}})) == [
        "targets.allow_variant"
    ]
    fields = problems(
        {**base, "targets": {"allow": ["u-1", ""], "allow_variant": "a", "deny": "u-2", "x": 1}}
    )
    assert set(fields) == {"targets.allow[1]", "targets.deny", "targets.x"}
    assert list(problems({**base, "targets": []})) == ["targets"]
    assert validate_flag({**base, "targets": {"deny": ["u-9"]}})["targets"] == {
        "allow": [],
        "allow_variant": None,
        "deny": ["u-9"],
    }


def test_validate_flag__rule_errors() -> None:
    fields = problems(
        flag(
            rules=[
                rule({"all": []}, rule_id="same"),
                rule({"all": []}, rule_id="same"),
                {"id": "no-when", "serve": {"variant": "on"}},
                rule({"all": []}, {"variant": "maybe"}, rule_id="bad-serve"),
                rule({"all": []}, {"variant": "on", "distribution": []}, rule_id="both"),
                rule(
                    {"all": []},
                    {
                        "distribution": [
                            {"variant": "on", "weight": 0},
                            {"variant": "off", "weight": 0},
                        ]
                    },
                    rule_id="zero",
                ),
                rule(
                    {"all": []},
                    {
                        "distribution": [
                            {"variant": "on", "weight": -1},
                            {"variant": "x", "weight": 1},
                        ]
                    },
                    rule_id="entries",
                ),
                {"id": "bad id!", "when": {"all": []}, "serve": {"variant": "on"}, "note": "x"},
                "not a rule",
            ]
        )
    )
    assert set(fields) == {
        "rules[1].id",
        "rules[2].when",
        "rules[3].serve.variant",
        "rules[4].serve",
        "rules[5].serve.distribution",
        "rules[6].serve.distribution[0].weight",
        "rules[6].serve.distribution[1].variant",
        "rules[7].id",
        "rules[7].note",
        "rules[8]",
    }


def test_validate_flag__default_errors() -> None:
    zero_weights = [
        {"key": "on", "value": True, "weight": 0},
        {"key": "off", "value": False, "weight": 0},
    ]
    assert list(problems(flag(variants=zero_weights))) == ["default"]
    assert validate_flag(flag(variants=zero_weights, default={"variant": "on"}))["default"] == {
        "variant": "on"
    }
    zero_split = {"distribution": [{"variant": "on", "weight": 0}]}
    assert list(problems(flag(default=zero_split))) == ["default.distribution"]
    assert list(problems(flag(default={"variant": "nope"}))) == ["default.variant"]
    assert list(problems(flag(default="on"))) == ["default"]
    huge = {
        "distribution": [{"variant": "on", "weight": 1e308}, {"variant": "off", "weight": 1e308}]
    }
    assert list(problems(flag(default=huge))) == ["default.distribution"]


@pytest.mark.parametrize(
    ("when", "path"),
    [
        (leaf("x", "like", "y"), "rules[0].when.all[1].op"),
        ({"attr": "x", "value": 1}, "rules[0].when.all[1].op"),
        (leaf("", "eq", "y"), "rules[0].when.all[1].attr"),
        (leaf("org..plan", "eq", "y"), "rules[0].when.all[1].attr"),
        ({"attr": "x", "op": "eq"}, "rules[0].when.all[1].value"),
        (leaf("x", "eq", None), "rules[0].when.all[1].value"),
        (leaf("x", "eq", ["NL"]), "rules[0].when.all[1].value"),
        (leaf("x", "in", "NL"), "rules[0].when.all[1].value"),
        (leaf("x", "in", ["NL", {"a": 1}]), "rules[0].when.all[1].value[1]"),
        (leaf("x", "contains", []), "rules[0].when.all[1].value"),
        (leaf("x", "starts_with", 1), "rules[0].when.all[1].value"),
        (leaf("x", "lt", "30"), "rules[0].when.all[1].value"),
        (leaf("x", "gte", True), "rules[0].when.all[1].value"),
        (leaf("x", "between", [40, 30]), "rules[0].when.all[1].value"),
        (leaf("x", "between", [30]), "rules[0].when.all[1].value"),
        (leaf("x", "between", ["30", 40]), "rules[0].when.all[1].value[0]"),
        (leaf("x", "semver_gt", "1.0"), "rules[0].when.all[1].value"),
        (leaf("x", "semver_eq", "v1.0.0"), "rules[0].when.all[1].value"),
        (leaf("x", "before", "next tuesday"), "rules[0].when.all[1].value"),
        (leaf("x", "after", True), "rules[0].when.all[1].value"),
        ({"attr": "x", "op": "exists", "value": 1}, "rules[0].when.all[1].value"),
        ({"attr": "x", "op": "eq", "value": 1, "negate": True}, "rules[0].when.all[1].negate"),
        ({"all": [], "attr": "x"}, "rules[0].when.all[1]"),
        ({"all": "x"}, "rules[0].when.all[1].all"),
        ({"any": [leaf("x", "eq", 1), 7]}, "rules[0].when.all[1].any[1]"),
        ({"not": [leaf("x", "eq", 1)]}, "rules[0].when.all[1].not"),
        ({"not": {"attr": "x", "op": "bad"}}, "rules[0].when.all[1].not.op"),
        ({}, "rules[0].when.all[1]"),
        ("country = NL", "rules[0].when.all[1]"),
        ({"segment": "no such key!"}, "rules[0].when.all[1].segment"),
    ],
)
def test_validate_flag__condition_errors_at_exact_paths(when: Any, path: str) -> None:
    assert list(condition_problems(when)) == [path]


def test_validate_flag__unknown_segment_only_when_segment_keys_given() -> None:
    when = {"segment": "beta"}
    validate_flag(flag(rules=[rule(when)]))
    validate_flag(flag(rules=[rule(when)]), segment_keys=["beta"])
    fields = condition_problems(when, segment_keys=["alpha"])
    assert list(fields) == ["rules[0].when.all[1].segment"]
    assert "unknown segment 'beta'" in fields["rules[0].when.all[1].segment"][0]


def nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = leaf("x", "eq", 1)
    for _ in range(depth - 1):
        condition = {"not": condition}
    return condition


def test_validate_flag__condition_nesting_capped_at_16() -> None:
    validate_flag(flag(rules=[rule(nested(16))]))
    fields = problems(flag(rules=[rule(nested(17))]))
    assert list(fields) == ["rules[0].when" + ".not" * 16]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(a)\1", "backreference"),
        ("(?P<n>a)(?P=n)", "backreference"),
        ("(?=a)b", "lookahead"),
        ("(?!a)b", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?<!a)b", "lookbehind"),
        ("[a-", "not a valid RE2"),
        ("a{1001}", "not a valid RE2"),
    ],
)
def test_validate_flag__regex_refused_with_a_reason(pattern: str, words: str) -> None:
    fields = condition_problems(leaf("email", "regex", pattern))
    (message,) = fields["rules[0].when.all[1].value"]
    assert words in message
    assert "RE2" in message


def test_validate_flag__regex_catastrophic_backtracking_pattern_is_accepted() -> None:
    validate_flag(flag(rules=[rule(leaf("x", "regex", "(a+)+$"))]))


def test_validate_flag__regex_length_capped_at_1024() -> None:
    validate_flag(flag(rules=[rule(leaf("x", "regex", "a" * 1024))]))
    fields = condition_problems(leaf("x", "regex", "a" * 1025))
    assert "at most 1024" in fields["rules[0].when.all[1].value"][0]


def test_validate_flag__tags() -> None:
    assert validate_flag({"key": "k", "tags": ["a", "team:payments"]})["tags"] == [
        "a",
        "team:payments",
    ]
    assert set(problems({"key": "k", "tags": ["a", "a", "", "x" * 65, 3]})) == {
        "tags[1]",
        "tags[2]",
        "tags[3]",
        "tags[4]",
    }
    assert list(problems({"key": "k", "tags": [f"t{n}" for n in range(51)]})) == ["tags"]


def test_payload_too_large__json_variant_over_32_kib() -> None:
    fits = {"blob": "x" * (32 * 1024 - len('{"blob":""}'))}
    too_big = {"blob": "x" * (32 * 1024)}
    variants = [{"key": "a", "value": fits, "weight": 1}, {"key": "b", "value": too_big}]
    doc = {"key": "k", "type": "json", "variants": variants, "off_variant": "a"}
    with pytest.raises(PayloadTooLarge) as raised:
        validate_flag(doc)
    assert (raised.value.field, raised.value.limit) == ("variants[1].value", 32 * 1024)
    validate_flag({**doc, "variants": variants[:1]})


def test_payload_too_large__counts_utf8_bytes() -> None:
    value = {"t": "é" * (16 * 1024)}
    doc = {"key": "k", "type": "json", "variants": [{"key": "a", "value": value, "weight": 1}]}
    with pytest.raises(PayloadTooLarge):
        validate_flag(doc)


def test_payload_too_large__whole_flag_over_256_kib() -> None:
    with pytest.raises(PayloadTooLarge) as raised:
        validate_flag({"key": "k", "targets": {"deny": [f"user-{n:08d}" for n in range(20_000)]}})
    assert (raised.value.field, raised.value.limit) == ("flag", 256 * 1024)


def test_validate_flag__rules_capped_at_200__says_the_cap_and_how_to_stay_under() -> None:
    validate_flag(flag(rules=[rule(leaf("n", "eq", n), rule_id=f"r{n}") for n in range(200)]))
    fields = problems(flag(rules=[rule(leaf("n", "eq", n), rule_id=f"r{n}") for n in range(1500)]))
    assert list(fields) == ["rules"]
    assert "at most 200 rules; got 1500" in fields["rules"][0]


def test_validate_flag__conditions_capped_at_1000_across_all_rules() -> None:
    def rules(leaves_per_rule: int) -> list[dict[str, Any]]:
        # Each rule: one "any" plus its leaves.
        return [
            rule({"any": [leaf("n", "eq", m) for m in range(leaves_per_rule)]}, rule_id=f"r{n}")
            for n in range(10)
        ]

    validate_flag(flag(rules=rules(99)))  # 10 x (1 + 99) = 1000
    fields = problems(flag(rules=rules(100)))  # 10 x (1 + 100) = 1010
    assert list(fields) == ["rules"]
    assert "at most 1000 conditions" in fields["rules"][0]
    assert "got 1010" in fields["rules"][0]
