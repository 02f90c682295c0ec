"""The flags, segments and users the benchmarks evaluate. Deterministic: the same seed, the same data.

``SIMPLE_FLAG`` and ``COMPLEX_FLAG`` are the two reference flags of issue 4, item 7. ``mixed_flags``
makes any number of valid flags of varied shapes (rollouts, rule chains, targets, segments,
prerequisites, json/number/string values, ``bucket_by`` an attribute, flags that are off) for the
bulk and compile benchmarks. All documents are API documents (``POST /v1/flags`` bodies).
"""

from __future__ import annotations

import random
from typing import Any

TENANT = "acme"

SIMPLE_FLAG: dict[str, Any] = {
    "key": "simple",
    "type": "boolean",
    "state": "on",
    "variants": [
        {"key": "on", "value": True, "weight": 50},
        {"key": "off", "value": False, "weight": 50},
    ],
    "off_variant": "off",
    "rules": [
        {"id": "nl", "when": {"attr": "country", "op": "eq", "value": "NL"}, "serve": {"variant": "on"}}
    ],
    "default": None,
}
"""``country == "NL"`` → on, otherwise 50 % on by id."""

COMPLEX_FLAG: dict[str, Any] = {
    "key": "complex",
    "type": "string",
    "state": "on",
    "variants": [
        {"key": "control", "value": "control", "weight": 50},
        {"key": "blue", "value": "blue", "weight": 30},
        {"key": "green", "value": "green", "weight": 20},
    ],
    "off_variant": "control",
    "rules": [
        {
            "id": "staff",
            "when": {"attr": "email", "op": "regex", "value": r"@example\.com$"},
            "serve": {"variant": "blue"},
        },
        {
            "id": "thirties",
            "when": {"attr": "age", "op": "between", "value": [30, 40]},
            "serve": {"variant": "green"},
        },
        {
            "id": "paid",
            "when": {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
            "serve": {"variant": "blue"},
        },
    ],
    "default": None,
}
"""Three rules (email regex, ``30 <= age < 40``, plan in pro/enterprise), else a 50/30/20 split."""

_COUNTRIES = ["NL", "DE", "US", "FR", "GB", "ES", "IT", "PL", "SE", "BR"]
_PLANS = ["free", "free", "team", "pro", "enterprise"]


def make_users(count: int, seed: int = 42) -> list[dict[str, Any]]:
    """Users ``{"id", "attributes"}`` with distinct ids and a mix of attributes.

    About 1 in 5 is in NL (the simple flag's rule), 1 in 7 has an ``@example.com`` address, most have
    an age (about 1 in 5 of those is in their thirties) and most a plan; some miss attributes.
    """
    rng = random.Random(seed)
    users = []
    for index in range(count):
        attributes: dict[str, Any] = {"country": "NL" if rng.random() < 0.2 else rng.choice(_COUNTRIES)}
        name = f"user{index}"
        attributes["email"] = (
            f"{name}@example.com" if rng.random() < 1 / 7 else f"{name}@mail{index % 13}.test"
        )
        if rng.random() < 0.8:
            attributes["age"] = rng.randint(18, 70)
        if rng.random() < 0.7:
            attributes["plan"] = rng.choice(_PLANS)
        attributes["app_version"] = f"{rng.randint(1, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        attributes["account_id"] = f"acct-{rng.randint(1, 5000)}"
        if rng.random() < 0.6:
            attributes["signup"] = f"20{rng.randint(20, 29)}-{rng.randint(1, 12):02d}-15T12:00:00Z"
        users.append({"id": f"u-{index:07d}", "attributes": attributes})
    return users


def mixed_segments(count: int = 20, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "key": f"segment-{index}",
            "description": "benchmark segment",
            "included": [f"u-{rng.randint(0, 99999):07d}" for _ in range(20)],
            "excluded": [f"u-{rng.randint(0, 99999):07d}" for _ in range(5)],
            "when": {
                "all": [
                    {"attr": "country", "op": "in", "value": rng.sample(_COUNTRIES, 3)},
                    {"attr": "plan", "op": "neq", "value": "free"},
                ]
            },
        }
        for index in range(count)
    ]


def _boolean_variants(on_weight: int) -> list[dict[str, Any]]:
    return [
        {"key": "on", "value": True, "weight": on_weight},
        {"key": "off", "value": False, "weight": 100 - on_weight},
    ]


def _shape_rollout(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    return {
        **SIMPLE_FLAG,
        "key": key,
        "variants": _boolean_variants(rng.choice([5, 10, 25, 50, 75])),
        "rules": [
            {
                "id": "country",
                "when": {"attr": "country", "op": "eq", "value": rng.choice(_COUNTRIES)},
                "serve": {"variant": "on"},
            }
        ],
    }


def _shape_rule_chain(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    low = rng.randint(18, 50)
    return {
        **COMPLEX_FLAG,
        "key": key,
        "rules": [
            {**COMPLEX_FLAG["rules"][0]},
            {**COMPLEX_FLAG["rules"][1], "when": {"attr": "age", "op": "between", "value": [low, low + 10]}},
            {**COMPLEX_FLAG["rules"][2]},
        ],
    }


def _shape_targets(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    return {
        "key": key,
        "type": "boolean",
        "state": "on",
        "variants": _boolean_variants(50),
        "off_variant": "off",
        "targets": {
            "allow": [f"u-{rng.randint(0, 99999):07d}" for _ in range(50)],
            "allow_variant": "on",
            "deny": [f"u-{rng.randint(0, 99999):07d}" for _ in range(10)],
        },
        "default": {"variant": "off"},
    }


def _shape_off(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    return {**_shape_rollout(key, rng, _, __), "state": "off"}


def _shape_segment_number(key: str, rng: random.Random, segments: list[str], _: int) -> dict[str, Any]:
    return {
        "key": key,
        "type": "number",
        "state": "on",
        "variants": [
            {"key": "low", "value": 10, "weight": 1},
            {"key": "mid", "value": 50, "weight": 1},
            {"key": "high", "value": 100, "weight": 1},
        ],
        "off_variant": "low",
        "rules": [
            {
                "id": "segment",
                "when": {"segment": rng.choice(segments)},
                "serve": {
                    "distribution": [
                        {"variant": "mid", "weight": 70},
                        {"variant": "high", "weight": 30},
                    ]
                },
            }
        ],
        "default": {"variant": "low"},
    }


def _shape_json_nested(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    return {
        "key": key,
        "type": "json",
        "state": "on",
        "variants": [
            {"key": "v1", "value": {"limit": 10, "features": ["a", "b"]}, "weight": 50},
            {"key": "v2", "value": {"limit": 20, "features": ["a", "b", "c"]}, "weight": 50},
        ],
        "off_variant": "v1",
        "rules": [
            {
                "id": "modern-clients",
                "when": {
                    "all": [
                        {"attr": "app_version", "op": "semver_gte", "value": f"2.{rng.randint(0, 9)}.0"},
                        {
                            "any": [
                                {"attr": "plan", "op": "in", "value": ["pro", "enterprise"]},
                                {"not": {"attr": "country", "op": "in", "value": ["US", "BR"]}},
                            ]
                        },
                        {"attr": "email", "op": "exists"},
                    ]
                },
                "serve": {"variant": "v2"},
            }
        ],
        "default": {"variant": "v1"},
    }


def _shape_prerequisite(key: str, rng: random.Random, _: list[str], index: int) -> dict[str, Any]:
    # Prerequisites point at an earlier rollout-shaped flag (index a multiple of len(SHAPES)).
    target = rng.randrange(0, max(1, index // len(SHAPES))) * len(SHAPES)
    return {
        "key": key,
        "type": "boolean",
        "state": "on",
        "variants": _boolean_variants(30),
        "off_variant": "off",
        "prerequisites": [{"flag": flag_key(target), "variants": ["on"]}],
        "rules": [
            {
                "id": "mail",
                "when": {
                    "any": [
                        {"attr": "email", "op": "ends_with", "value": "@example.com"},
                        {"attr": "email", "op": "starts_with", "value": "user1"},
                        {"attr": "account_id", "op": "contains", "value": "-42"},
                    ]
                },
                "serve": {"variant": "on"},
            }
        ],
        "default": None,
    }


def _shape_bucket_by_account(key: str, rng: random.Random, _: list[str], __: int) -> dict[str, Any]:
    return {
        "key": key,
        "type": "string",
        "state": "on",
        "variants": [
            {"key": "a", "value": "a", "weight": 34},
            {"key": "b", "value": "b", "weight": 33},
            {"key": "c", "value": "c", "weight": 33},
        ],
        "off_variant": "a",
        "bucket_by": "account_id",
        "rules": [
            {
                "id": "window",
                "when": {
                    "all": [
                        {"attr": "signup", "op": "after", "value": "2024-01-01T00:00:00Z"},
                        {"attr": "signup", "op": "before", "value": "2030-01-01T00:00:00Z"},
                    ]
                },
                "serve": {"variant": "c"},
            },
            {
                "id": "older",
                "when": {"attr": "age", "op": "gte", "value": rng.randint(40, 60)},
                "serve": {"variant": "b"},
            },
        ],
        "default": None,
    }


SHAPES = (
    _shape_rollout,
    _shape_rule_chain,
    _shape_targets,
    _shape_off,
    _shape_segment_number,
    _shape_json_nested,
    _shape_prerequisite,
    _shape_bucket_by_account,
)


def flag_key(index: int) -> str:
    return f"flag-{index:05d}"


def mixed_flags(count: int, segment_keys: list[str], seed: int = 11) -> list[dict[str, Any]]:
    """``count`` valid flag documents cycling through ``SHAPES`` (prerequisites point backwards)."""
    rng = random.Random(seed)
    return [SHAPES[index % len(SHAPES)](flag_key(index), rng, segment_keys, index) for index in range(count)]


def shape_names() -> list[str]:
    return [shape.__name__.removeprefix("_shape_") for shape in SHAPES]
