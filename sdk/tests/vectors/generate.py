"""Regenerate the language-neutral test vectors next to this file.

    python sdk/tests/vectors/generate.py

``bucketing.json``: hash inputs and their buckets, computed here with ``mmh3`` directly (not through
the engine), and for some a distribution with the variant that rules.md's walk picks, walked here
independently. ``evaluation.json``: small rulesets, a user and the expected answer. The expected
variant, reason and rule id are written by hand below; only ``details.bucket`` and the variants that
depend on it are computed, with the same formula. Flag documents are stored normalised (every field
present), which is what another SDK receives in a snapshot.

Another SDK passes when it reproduces every vector; ``test_vectors.py`` checks this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mmh3
from evaluation_cases import BETA, CASES, VIP

from flagsvc_sdk.engine import validate_flag, validate_segment

HERE = Path(__file__).parent
TENANT = "acme"

BUCKET_INPUTS: list[tuple[str, str, str]] = [
    ("acme", "checkout-redesign", "u-42"),
    ("acme", "checkout-redesign", "u-43"),
    ("acme", "checkout-redesign", "u-1"),
    ("acme", "checkout-redesign", ""),
    ("globex", "checkout-redesign", "u-42"),
    ("initech", "checkout-redesign", "u-42"),
    ("acme", "new-payments", "u-42"),
    ("acme", "search.v2", "u-42"),
    ("acme", "A", "1"),
    ("a", "b", "c"),
    ("acme", "checkout", "0"),
    ("acme", "checkout", "1234"),
    ("acme", "checkout", "-17"),
    ("acme", "checkout", "acc-9"),
    ("acme", "checkout", "user@example.com"),
    ("acme", "checkout", "550e8400-e29b-41d4-a716-446655440000"),
    ("acme", "checkout", "x" * 256),
    ("acme", "checkout", "a:b:c"),
    ("acme", "checkout", " padded "),
    ("acme", "checkout", "tab\there"),
    ("acme", "checkout", "josé"),
    ("acme", "checkout", "jose\u0301"),
    ("acme", "checkout", "Zoë"),
    ("acme", "checkout", "ßtraße"),
    ("acme", "checkout", "用户-42"),
    ("acme", "checkout", "ユーザー"),
    ("acme", "checkout", "사용자"),
    ("acme", "checkout", "пользователь"),
    ("acme", "checkout", "χρήστης"),
    ("acme", "checkout", "משתמש"),
    ("acme", "checkout", "مستخدم"),
    ("acme", "checkout", "उपयोगकर्ता"),
    ("acme", "checkout", "🚀"),
    ("acme", "checkout", "👩‍💻-7"),
    ("acme", "checkout", "\U0001d518\U0001d530\U0001d522\U0001d52f"),
    ("acme", "checkout", "\u00a0nbsp"),
    ("ácme", "checkout", "u-42"),
    ("テナント", "checkout", "u-42"),
    *[("acme", "rollout", f"user-{n}") for n in range(12)],
    *[("globex", "rollout", f"user-{n}") for n in range(6)],
]

DISTRIBUTIONS: list[tuple[str, str, str, list[tuple[str, float]]]] = [
    ("acme", "checkout-redesign", "u-42", [("on", 20), ("off", 80)]),
    ("acme", "checkout-redesign", "u-43", [("on", 20), ("off", 80)]),
    ("acme", "checkout-redesign", "u-44", [("on", 20), ("off", 80)]),
    ("acme", "pricing", "u-1", [("a", 50), ("b", 30), ("c", 20)]),
    ("acme", "pricing", "u-2", [("a", 50), ("b", 30), ("c", 20)]),
    ("acme", "pricing", "u-3", [("a", 50), ("b", 30), ("c", 20)]),
    ("acme", "pricing", "u-4", [("a", 50), ("b", 30), ("c", 20)]),
    ("acme", "pricing", "u-5", [("a", 0.5), ("b", 0.3), ("c", 0.2)]),
    ("acme", "pricing", "用户-5", [("a", 1), ("b", 1), ("c", 1)]),
    ("acme", "zeroes", "u-6", [("never", 0), ("sometimes", 1), ("also-never", 0), ("often", 3)]),
    ("acme", "tenths", "u-7", [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4)]),
    ("acme", "single", "u-8", [("only", 7)]),
]


def hash_of(tenant: str, flag_key: str, bucket_value: str) -> int:
    return mmh3.hash(f"{tenant}:{flag_key}:{bucket_value}", seed=0, signed=False)


def bucket_of(tenant: str, flag_key: str, bucket_value: str) -> float:
    return hash_of(tenant, flag_key, bucket_value) / 2**32


def walk(bucket: float, entries: list[tuple[str, float]]) -> str:
    """rules.md: ``cum += weight; if bucket < cum / total: pick``, in doubles, in list order."""
    total = 0.0
    for _, weight in entries:
        total += weight
    cumulative = 0.0
    for variant, weight in entries:
        cumulative += weight
        if bucket < cumulative / total:
            return variant
    raise AssertionError("unreachable: the last share is 1.0")


def bucketing_vectors() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = [
        {
            "tenant": tenant,
            "flag_key": key,
            "bucket_value": value,
            "hash_input": f"{tenant}:{key}:{value}",
            "expected_hash": hash_of(tenant, key, value),
            "expected_bucket": bucket_of(tenant, key, value),
        }
        for tenant, key, value in BUCKET_INPUTS
    ]
    for tenant, key, value, entries in DISTRIBUTIONS:
        bucket = bucket_of(tenant, key, value)
        cases.append(
            {
                "tenant": tenant,
                "flag_key": key,
                "bucket_value": value,
                "hash_input": f"{tenant}:{key}:{value}",
                "expected_hash": hash_of(tenant, key, value),
                "expected_bucket": bucket,
                "distribution": [
                    {"variant": variant, "weight": weight} for variant, weight in entries
                ],
                "expected_variant": walk(bucket, entries),
            }
        )
    return cases


def evaluation_vector(
    name: str, raw_flags: list[dict[str, Any]], user: dict[str, Any], spec: dict[str, Any]
) -> dict[str, Any]:
    segments = [validate_segment(segment) for segment in (BETA, VIP)]
    flags = [
        {**validate_flag(doc, segment_keys=["beta", "vip"]), "version": 3} for doc in raw_flags
    ]
    flag_key = spec.get("flag_key", raw_flags[0]["key"])
    user = {"id": user["id"], "attributes": user.get("attributes", {})}
    expected: dict[str, Any] = {
        key: spec[key]
        for key in ("variant", "value", "reason", "rule_id", "error_code")
        if key in spec
    }
    expected.setdefault("rule_id", None)
    expected.setdefault("error_code", None)
    details = dict(spec.get("details", {}))
    if any(doc["key"] == flag_key for doc in raw_flags):
        details["flag_version"] = 3
        if not spec.get("no_bucket"):
            details["bucket"] = bucket_of(TENANT, flag_key, spec.get("bucket_value", user["id"]))
    if "walk" in spec:
        expected["variant"] = walk(details["bucket"], spec["walk"])
    expected["details"] = details
    return {
        "name": name,
        "tenant": TENANT,
        "flags": flags,
        "segments": [{**segment, "version": 1} for segment in segments],
        "flag_key": flag_key,
        "user": user,
        "expected": expected,
    }


def main() -> None:
    bucketing = bucketing_vectors()
    evaluation = [evaluation_vector(*case) for case in CASES]
    for name, cases in (("bucketing.json", bucketing), ("evaluation.json", evaluation)):
        text = json.dumps(cases, indent=2, ensure_ascii=False) + "\n"
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {len(cases)} cases to {name}")


if __name__ == "__main__":
    main()
