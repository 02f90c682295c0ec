"""The cases of ``evaluation.json``, written by hand: see ``generate.py`` for the format."""

from __future__ import annotations

from typing import Any


def on(key: str = "f", **fields: Any) -> dict[str, Any]:
    return {"key": key, "state": "on", **fields}


def leaf(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    if op in ("exists", "not_exists"):
        return {"attr": attribute, "op": op}
    return {"attr": attribute, "op": op, "value": value}


def rule_flag(when: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return on(
        rules=[{"id": "r1", "when": when, "serve": {"variant": "on"}}],
        default={"variant": "off"},
        **fields,
    )


MATCH = {"variant": "on", "reason": "RULE_MATCH", "rule_id": "r1"}
MISS = {"variant": "off", "reason": "DEFAULT", "rule_id": None}
PRICING_VARIANTS = [
    {"key": "a", "value": "A", "weight": 50},
    {"key": "b", "value": "B", "weight": 30},
    {"key": "c", "value": "C", "weight": 20},
]
BETA = {
    "key": "beta",
    "included": ["u-in"],
    "excluded": ["u-out"],
    "when": leaf("plan", "in", ["pro", "enterprise"]),
}
VIP = {"key": "vip", "included": ["u-vip"]}

Case = tuple[str, list[dict[str, Any]], dict[str, Any], dict[str, Any]]
"""``(name, flags, user, spec)``: the first flag is evaluated unless ``spec`` names ``flag_key``.

``spec`` holds the expected variant/value/reason/rule_id/error_code/details; ``walk`` instead of a
variant picks it from the bucket; ``bucket_value`` hashes that instead of the id; ``no_bucket`` says
the user cannot be bucketed.
"""

CASES: list[Case] = [
    (
        "api.md example: 20/80 boolean rollout",
        [
            on(
                "checkout-redesign",
                variants=[
                    {"key": "on", "value": True, "weight": 20},
                    {"key": "off", "value": False, "weight": 80},
                ],
            )
        ],
        {"id": "u-42"},
        {"reason": "PERCENTAGE_ROLLOUT", "walk": [("on", 20), ("off", 80)]},
    ),
    (
        "off flag serves off_variant",
        [on(state="off")],
        {"id": "u-1"},
        {"variant": "off", "value": False, "reason": "OFF"},
    ),
    (
        "deny wins over allow",
        [on(targets={"allow": ["u-1"], "deny": ["u-1"]})],
        {"id": "u-1"},
        {"variant": "off", "reason": "TARGET_MATCH", "details": {"target": "deny"}},
    ),
    (
        "allow serves allow_variant",
        [on(targets={"allow": ["u-1"]}, default={"variant": "off"})],
        {"id": "u-1"},
        {"variant": "on", "reason": "TARGET_MATCH", "details": {"target": "allow"}},
    ),
    (
        "eq matches",
        [rule_flag(leaf("country", "eq", "NL"))],
        {"id": "u-1", "attributes": {"country": "NL"}},
        MATCH,
    ),
    (
        "eq is case-sensitive",
        [rule_flag(leaf("country", "eq", "NL"))],
        {"id": "u-1", "attributes": {"country": "nl"}},
        MISS,
    ),
    (
        "eq true is not 1",
        [rule_flag(leaf("beta", "eq", True))],
        {"id": "u-1", "attributes": {"beta": 1}},
        MISS,
    ),
    (
        "eq 1 equals 1.0",
        [rule_flag(leaf("n", "eq", 1))],
        {"id": "u-1", "attributes": {"n": 1.0}},
        MATCH,
    ),
    (
        "in list",
        [rule_flag(leaf("plan", "in", ["pro", "enterprise"]))],
        {"id": "u-1", "attributes": {"plan": "pro"}},
        MATCH,
    ),
    (
        "not_in is false on a missing attribute",
        [rule_flag(leaf("plan", "not_in", ["free"]))],
        {"id": "u-1"},
        MISS,
    ),
    (
        "neq is false on a null attribute",
        [rule_flag(leaf("plan", "neq", "free"))],
        {"id": "u-1", "attributes": {"plan": None}},
        MISS,
    ),
    (
        "contains in a list",
        [rule_flag(leaf("roles", "contains", "admin"))],
        {"id": "u-1", "attributes": {"roles": ["dev", "admin"]}},
        MATCH,
    ),
    (
        "starts_with",
        [rule_flag(leaf("email", "starts_with", "qa+"))],
        {"id": "u-1", "attributes": {"email": "qa+1@acme.com"}},
        MATCH,
    ),
    (
        "ends_with",
        [rule_flag(leaf("email", "ends_with", "@acme.com"))],
        {"id": "u-1", "attributes": {"email": "bob@acme.com.evil"}},
        MISS,
    ),
    (
        "regex searches",
        [rule_flag(leaf("email", "regex", r"^[a-z]+@acme\.(com|org)$"))],
        {"id": "u-1", "attributes": {"email": "bob@acme.org"}},
        MATCH,
    ),
    (
        "lt accepts a numeric string",
        [rule_flag(leaf("age", "lt", 30))],
        {"id": "u-1", "attributes": {"age": "29.5"}},
        MATCH,
    ),
    (
        "between excludes hi",
        [rule_flag(leaf("age", "between", [30, 40]))],
        {"id": "u-1", "attributes": {"age": 40}},
        MISS,
    ),
    (
        "between includes lo",
        [rule_flag(leaf("age", "between", [30, 40]))],
        {"id": "u-1", "attributes": {"age": 30}},
        MATCH,
    ),
    (
        "semver 2.10.0 > 2.9.1",
        [rule_flag(leaf("app", "semver_gt", "2.9.1"))],
        {"id": "u-1", "attributes": {"app": "2.10.0"}},
        MATCH,
    ),
    (
        "semver pre-release sorts first",
        [rule_flag(leaf("app", "semver_lt", "1.0.0"))],
        {"id": "u-1", "attributes": {"app": "1.0.0-rc.1"}},
        MATCH,
    ),
    (
        "semver invalid attribute is false",
        [rule_flag(leaf("app", "semver_lt", "9.0.0"))],
        {"id": "u-1", "attributes": {"app": "v1.0"}},
        MISS,
    ),
    (
        "before with an offset",
        [rule_flag(leaf("signup", "before", "2026-01-01T00:00:00Z"))],
        {"id": "u-1", "attributes": {"signup": "2026-01-01T01:00:00+02:00"}},
        MATCH,
    ),
    (
        "after with epoch seconds",
        [rule_flag(leaf("signup", "after", "2026-01-01T00:00:00Z"))],
        {"id": "u-1", "attributes": {"signup": 1767225601}},
        MATCH,
    ),
    (
        "not_exists on a missing attribute",
        [rule_flag(leaf("email", "not_exists"))],
        {"id": "u-1"},
        MATCH,
    ),
    (
        "dotted attribute",
        [rule_flag(leaf("org.plan", "eq", "pro"))],
        {"id": "u-1", "attributes": {"org": {"plan": "pro"}}},
        MATCH,
    ),
    (
        "attr id is the user id",
        [rule_flag(leaf("id", "in", ["u-7", "u-8"]))],
        {"id": "u-7", "attributes": {"id": "u-1"}},
        MATCH,
    ),
    (
        "all/any/not",
        [
            rule_flag(
                {
                    "all": [
                        {"any": [leaf("a", "eq", 1), leaf("b", "eq", 2)]},
                        {"not": leaf("c", "exists")},
                    ]
                }
            )
        ],
        {"id": "u-1", "attributes": {"b": 2}},
        MATCH,
    ),
    ("empty any is false", [rule_flag({"any": []})], {"id": "u-1"}, MISS),
    ("segment included", [rule_flag({"segment": "beta"})], {"id": "u-in"}, MATCH),
    (
        "segment excluded beats when",
        [rule_flag({"segment": "beta"})],
        {"id": "u-out", "attributes": {"plan": "pro"}},
        MISS,
    ),
    (
        "segment when",
        [rule_flag({"segment": "beta"})],
        {"id": "u-2", "attributes": {"plan": "enterprise"}},
        MATCH,
    ),
    (
        "segment without when",
        [rule_flag({"segment": "vip"})],
        {"id": "u-2", "attributes": {"plan": "pro"}},
        MISS,
    ),
    (
        "prerequisite met",
        [
            on(prerequisites=[{"flag": "p", "variants": ["on"]}], default={"variant": "on"}),
            on("p", default={"variant": "on"}),
        ],
        {"id": "u-1"},
        {"variant": "on", "reason": "DEFAULT"},
    ),
    (
        "deep prerequisite failure names the direct prerequisite",
        [
            on(prerequisites=[{"flag": "p1", "variants": ["on"]}]),
            on("p1", prerequisites=[{"flag": "p2", "variants": ["on"]}]),
            on("p2", state="off"),
        ],
        {"id": "u-1"},
        {"variant": "off", "reason": "PREREQUISITE_FAILED", "details": {"prerequisite": "p1"}},
    ),
    (
        "rule with a distribution",
        [
            on(
                "pricing",
                type="string",
                variants=PRICING_VARIANTS,
                off_variant="a",
                rules=[
                    {
                        "id": "split",
                        "when": {"all": []},
                        "serve": {
                            "distribution": [
                                {"variant": "b", "weight": 1},
                                {"variant": "c", "weight": 1},
                            ]
                        },
                    }
                ],
            )
        ],
        {"id": "u-3"},
        {"reason": "RULE_MATCH", "rule_id": "split", "walk": [("b", 1), ("c", 1)]},
    ),
    *[
        (
            f"50/30/20 split by variant weights, user {user_id}",
            [on("pricing", type="string", variants=PRICING_VARIANTS, off_variant="a")],
            {"id": user_id},
            {"reason": "PERCENTAGE_ROLLOUT", "walk": [("a", 50), ("b", 30), ("c", 20)]},
        )
        for user_id in ("u-1", "u-2", "u-3", "用户-4")
    ],
    (
        "bucket_by an attribute",
        [
            on(
                "pricing",
                type="string",
                variants=PRICING_VARIANTS,
                off_variant="a",
                bucket_by="account_id",
            )
        ],
        {"id": "u-1", "attributes": {"account_id": "acc-9"}},
        {
            "reason": "PERCENTAGE_ROLLOUT",
            "bucket_value": "acc-9",
            "walk": [("a", 50), ("b", 30), ("c", 20)],
        },
    ),
    (
        "bucket_by an integer attribute hashes its decimal form",
        [
            on(
                "pricing",
                type="string",
                variants=PRICING_VARIANTS,
                off_variant="a",
                bucket_by="org.number",
            )
        ],
        {"id": "u-1", "attributes": {"org": {"number": 1234}}},
        {
            "reason": "PERCENTAGE_ROLLOUT",
            "bucket_value": "1234",
            "walk": [("a", 50), ("b", 30), ("c", 20)],
        },
    ),
    (
        "not bucketable: default split serves off_variant with ERROR",
        [on(bucket_by="account_id")],
        {"id": "u-1", "attributes": {"account_id": 1.5}},
        {"variant": "off", "reason": "ERROR", "error_code": "NOT_BUCKETABLE", "no_bucket": True},
    ),
    (
        "not bucketable: a rule that needs a bucket does not match",
        [
            on(
                bucket_by="account_id",
                rules=[
                    {
                        "id": "split",
                        "when": {"all": []},
                        "serve": {"distribution": [{"variant": "on", "weight": 1}]},
                    },
                    {"id": "fallback", "when": {"all": []}, "serve": {"variant": "off"}},
                ],
            )
        ],
        {"id": "u-1"},
        {"variant": "off", "reason": "RULE_MATCH", "rule_id": "fallback", "no_bucket": True},
    ),
    (
        "number flag",
        [
            on(
                type="number",
                variants=[{"key": "low", "value": 1.5}, {"key": "high", "value": 10}],
                off_variant="low",
                default={"variant": "high"},
            )
        ],
        {"id": "u-1"},
        {"variant": "high", "value": 10, "reason": "DEFAULT"},
    ),
    (
        "json flag",
        [
            on(
                type="json",
                variants=[{"key": "v1", "value": {"limits": [1, 2]}}, {"key": "v0", "value": []}],
                off_variant="v0",
                default={"variant": "v1"},
            )
        ],
        {"id": "u-1"},
        {"variant": "v1", "value": {"limits": [1, 2]}, "reason": "DEFAULT"},
    ),
    (
        "unknown flag",
        [on("other")],
        {"id": "u-1"},
        {
            "flag_key": "missing",
            "variant": None,
            "value": None,
            "reason": "ERROR",
            "error_code": "FLAG_NOT_FOUND",
        },
    ),
]
