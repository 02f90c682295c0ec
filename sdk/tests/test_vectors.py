"""The language-neutral vectors in ``vectors/``: what every SDK must reproduce exactly.

The bucketing vectors are checked twice: through the engine, and with an independent pure-Python
MurmurHash3 x86 32-bit written here, so that a wrong ``mmh3`` call (seed, signedness, encoding)
could not go unnoticed even if the vectors had been generated with the same mistake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flagsvc_sdk.engine import bucket, compile_ruleset, evaluate, validate_flag

VECTORS = Path(__file__).parent / "vectors"
BUCKETING: list[dict[str, Any]] = json.loads((VECTORS / "bucketing.json").read_text("utf-8"))
EVALUATION: list[dict[str, Any]] = json.loads((VECTORS / "evaluation.json").read_text("utf-8"))
MASK = 0xFFFFFFFF


def rotate_left(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & MASK


def scramble(block: int) -> int:
    return (rotate_left((block * 0xCC9E2D51) & MASK, 15) * 0x1B873593) & MASK


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, transcribed from Austin Appleby's reference ``MurmurHash3.cpp``."""
    state = seed
    whole = len(data) - len(data) % 4
    for offset in range(0, whole, 4):
        state ^= scramble(int.from_bytes(data[offset : offset + 4], "little"))
        state = (rotate_left(state, 13) * 5 + 0xE6546B64) & MASK
    tail = data[whole:]
    if tail:
        state ^= scramble(int.from_bytes(tail, "little"))
    state ^= len(data)
    state ^= state >> 16
    state = (state * 0x85EBCA6B) & MASK
    state ^= state >> 13
    state = (state * 0xC2B2AE35) & MASK
    return state ^ (state >> 16)


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
        (b"\xff\xff\xff\xff", 0, 0x76293B50),
        (b"!Ce\x87", 0, 0xF55B516B),
        (b"!Ce", 0, 0x7E4A8634),
        (b"!C", 0, 0xA0F7B07A),
        (b"!", 0, 0x72661CF4),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_reference_murmur3__known_answers(data: bytes, seed: int, expected: int) -> None:
    """Published MurmurHash3 x86_32 answers, so the reference itself is trustworthy."""
    assert murmur3_x86_32(data, seed) == expected


def test_bucketing_vectors__enough_cases_with_unicode_and_the_rules_md_example() -> None:
    assert len(BUCKETING) >= 50
    assert sum(1 for case in BUCKETING if "expected_variant" in case) >= 10
    assert any(not case["bucket_value"].isascii() for case in BUCKETING)
    example = next(
        case for case in BUCKETING if case["hash_input"] == "acme:checkout-redesign:u-42"
    )
    assert (example["tenant"], example["flag_key"], example["bucket_value"]) == (
        "acme",
        "checkout-redesign",
        "u-42",
    )


@pytest.mark.parametrize("case", BUCKETING, ids=lambda case: case["hash_input"][:60])
def test_bucketing_vectors__engine_and_independent_murmur3_agree(case: dict[str, Any]) -> None:
    tenant, flag_key, value = case["tenant"], case["flag_key"], case["bucket_value"]
    assert case["hash_input"] == f"{tenant}:{flag_key}:{value}"
    assert murmur3_x86_32(case["hash_input"].encode("utf-8"), 0) == case["expected_hash"]
    assert case["expected_hash"] / 2**32 == case["expected_bucket"]
    assert bucket(tenant, flag_key, value) == case["expected_bucket"]
    assert 0.0 <= case["expected_bucket"] < 1.0


def independent_walk(position: float, distribution: list[dict[str, Any]]) -> str:
    total = 0.0
    for entry in distribution:
        total += entry["weight"]
    cumulative = 0.0
    for entry in distribution:
        cumulative += entry["weight"]
        if position < cumulative / total:
            return str(entry["variant"])
    raise AssertionError("no entry picked")


@pytest.mark.parametrize(
    "case",
    [case for case in BUCKETING if "distribution" in case],
    ids=lambda case: case["hash_input"],
)
def test_distribution_vectors__engine_picks_the_expected_variant(case: dict[str, Any]) -> None:
    distribution = case["distribution"]
    position = murmur3_x86_32(case["hash_input"].encode("utf-8")) / 2**32
    assert independent_walk(position, distribution) == case["expected_variant"]
    variants = [{"key": entry["variant"], "value": entry["variant"]} for entry in distribution]
    doc = validate_flag(
        {
            "key": case["flag_key"],
            "type": "string",
            "state": "on",
            "variants": variants,
            "off_variant": variants[0]["key"],
            "default": {"distribution": distribution},
        }
    )
    rules = compile_ruleset(
        tenant=case["tenant"], version="1", flags=[{**doc, "version": 1}], segments=[]
    )
    result = evaluate(rules, case["flag_key"], {"id": case["bucket_value"], "attributes": {}})
    assert (result.variant, result.reason) == (case["expected_variant"], "PERCENTAGE_ROLLOUT")
    assert result.details["bucket"] == case["expected_bucket"]


def test_evaluation_vectors__enough_cases() -> None:
    assert len(EVALUATION) >= 30
    reasons = {case["expected"]["reason"] for case in EVALUATION}
    assert reasons == {
        "OFF",
        "PREREQUISITE_FAILED",
        "TARGET_MATCH",
        "RULE_MATCH",
        "DEFAULT",
        "PERCENTAGE_ROLLOUT",
        "ERROR",
    }


@pytest.mark.parametrize("case", EVALUATION, ids=lambda case: case["name"])
@pytest.mark.parametrize("trace", [False, True])
def test_evaluation_vectors__engine_gives_the_expected_answer(
    case: dict[str, Any], trace: bool
) -> None:
    rules = compile_ruleset(
        tenant=case["tenant"], version="1", flags=case["flags"], segments=case["segments"]
    )
    result = evaluate(rules, case["flag_key"], case["user"], trace=trace)
    expected = case["expected"]
    assert result.variant == expected["variant"]
    assert result.reason == expected["reason"]
    assert result.rule_id == expected["rule_id"]
    assert result.error_code == expected["error_code"]
    assert result.details == expected["details"]
    if "value" in expected:
        assert result.value == expected["value"]
