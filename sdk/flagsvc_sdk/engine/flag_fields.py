"""Checks of the parts of a flag (``rules.md`` "Flag fields"): variants, targets, rules, serves,
default and tags (prerequisites are in ``prerequisites``). Each adds its problems at exact paths and
returns the normalised part.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from flagsvc_sdk.engine.condition_rules import (
    check_condition,
    conditions_problem,
    count_conditions,
)
from flagsvc_sdk.engine.errors import PayloadTooLarge
from flagsvc_sdk.engine.limits import (
    BOOLEAN_VARIANTS,
    MAX_DESCRIPTION_CHARS,
    MAX_JSON_VALUE_BYTES,
    MAX_RULES,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_VARIANTS,
)
from flagsvc_sdk.engine.problems import (
    Problems,
    at,
    id_list_problems,
    item,
    key_problem,
    text_problem,
    unknown_fields,
)
from flagsvc_sdk.engine.values import copy_json, is_number, json_size

_VARIANT_FIELDS: Final = frozenset({"key", "value", "weight"})
_TARGET_FIELDS: Final = frozenset({"allow", "allow_variant", "deny"})
_RULE_FIELDS: Final = frozenset({"id", "description", "when", "serve"})
_ENTRY_FIELDS: Final = frozenset({"variant", "weight"})
_SERVE_SHAPE: Final = (
    '{"variant": "<key>"} or {"distribution": [{"variant": "<key>", "weight": 50}, ...]}'
)
_VALUE_TYPES: Final = {
    "boolean": "true or false",
    "string": "a string",
    "number": "a finite number",
    "json": "a JSON object or array",
}


def _weight(value: Any, path: str, problems: Problems) -> float | int | None:
    if value is None:
        return 0
    if is_number(value) and value >= 0:
        try:
            if float(value) != float("inf"):
                return value  # type: ignore[no-any-return]
        except OverflowError:
            pass
    problems.add(path, f"must be a non-negative finite number; got {value!r}")
    return None


def _weights_problem(weights: list[float | int]) -> str | None:
    total = 0.0
    for weight in weights:
        total += float(weight)
    if total == 0.0:
        return "weights must not all be 0: nobody could be served"
    if total == float("inf"):
        return "weights are too large: their sum must be a finite number"
    return None


def _value_fits(flag_type: str, value: Any) -> bool:
    if flag_type == "boolean":
        return isinstance(value, bool)
    if flag_type == "string":
        return isinstance(value, str)
    if flag_type == "number":
        return is_number(value)
    return isinstance(value, dict | list) and json_size(value) is not None


def names_variant(value: Any, variant_keys: list[str]) -> bool:
    """Whether ``value`` names one of ``variant_keys``.

    Any string passes while no variant is valid, so that broken variants are reported once and not
    again at every reference to them.
    """
    if not isinstance(value, str):
        return False
    return value in variant_keys or not variant_keys


def check_variants(
    doc: Mapping[str, Any], flag_type: str | None, problems: Problems
) -> list[dict[str, Any]]:
    """The variants; a boolean flag without any gets ``on``/``off``. A json value over 32 KiB
    raises.
    """
    value = doc.get("variants")
    if value is None and flag_type == "boolean":
        return [dict(variant) for variant in BOOLEAN_VARIANTS]
    if value is None and flag_type is None:
        return []
    if not isinstance(value, list) or not value:
        problems.add("variants", 'required: a non-empty list of {"key", "value", "weight"}')
        return []
    if len(value) > MAX_VARIANTS:
        problems.add("variants", f"at most {MAX_VARIANTS} variants; got {len(value)}")
    if flag_type == "json":
        for index, variant in enumerate(value):
            payload = variant.get("value") if isinstance(variant, dict) else None
            size = json_size(payload) if isinstance(payload, dict | list) else None
            if size is not None and size > MAX_JSON_VALUE_BYTES:
                raise PayloadTooLarge(f"variants[{index}].value", MAX_JSON_VALUE_BYTES, size)
    variants: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, variant in enumerate(value):
        path = item("variants", index)
        if not isinstance(variant, dict):
            problems.add(path, 'must be an object {"key", "value", "weight"}')
            continue
        unknown_fields(variant, _VARIANT_FIELDS, problems, path)
        key = variant.get("key")
        problem = key_problem(key, "a variant key")
        if problem is not None:
            problems.add(at(path, "key"), problem)
            continue
        if key in seen:
            problems.add(at(path, "key"), f"duplicate variant key {key!r}: keys must be unique")
            continue
        seen.add(str(key))
        payload = variant.get("value")
        if flag_type is not None and not _value_fits(flag_type, payload):
            problems.add(
                at(path, "value"), f"must be {_VALUE_TYPES[flag_type]} for a {flag_type} flag"
            )
        weight = _weight(variant.get("weight"), at(path, "weight"), problems)
        variants.append({"key": key, "value": copy_json(payload), "weight": weight})
    return variants


def check_targets(
    value: Any, variant_keys: list[str], is_boolean: bool, problems: Problems
) -> dict[str, Any]:
    """Allow and deny lists; ``allow_variant`` defaults to ``on`` for a boolean flag with one."""
    targets = {} if value is None else value
    if not isinstance(targets, dict):
        problems.add(
            "targets", 'must be an object {"allow": [...], "allow_variant": "<key>", "deny": [...]}'
        )
        targets = {}
    unknown_fields(targets, _TARGET_FIELDS, problems, "targets")
    allow = _target_ids(targets.get("allow"), "targets.allow", problems)
    deny = _target_ids(targets.get("deny"), "targets.deny", problems)
    allow_variant = targets.get("allow_variant")
    if allow_variant is None:
        allow_variant = "on" if is_boolean and "on" in variant_keys else None
        if allow and allow_variant is None:
            problems.add(
                "targets.allow_variant",
                "required when allow lists users: name the variant they get",
            )
    elif not names_variant(allow_variant, variant_keys):
        problems.add(
            "targets.allow_variant",
            f"must name a variant ({', '.join(variant_keys)}); got {allow_variant!r}",
        )
    return {"allow": allow, "allow_variant": allow_variant, "deny": deny}


def _target_ids(value: Any, path: str, problems: Problems) -> list[str]:
    return [] if value is None else id_list_problems(value, path, problems, "user ids")


def check_serve(
    value: Any, path: str, variant_keys: list[str], problems: Problems
) -> dict[str, Any] | None:
    """``{"variant": key}`` or ``{"distribution": [{"variant", "weight"}, ...]}`` naming existing
    variants.
    """
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or not ({"variant", "distribution"} & set(value))
    ):
        problems.add(path, f"must be exactly one of {_SERVE_SHAPE}")
        return None
    if "variant" in value:
        variant = value["variant"]
        if not names_variant(variant, variant_keys):
            problems.add(
                at(path, "variant"),
                f"must name a variant ({', '.join(variant_keys)}); got {variant!r}",
            )
            return None
        return {"variant": variant}
    entries = value["distribution"]
    entries_path = at(path, "distribution")
    if not isinstance(entries, list) or not entries:
        problems.add(
            entries_path, 'must be a non-empty list of {"variant": "<key>", "weight": <number>}'
        )
        return None
    distribution: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        entry_path = item(entries_path, index)
        if not isinstance(entry, dict):
            problems.add(entry_path, 'must be an object {"variant": "<key>", "weight": <number>}')
            continue
        unknown_fields(entry, _ENTRY_FIELDS, problems, entry_path)
        variant = entry.get("variant")
        if not names_variant(variant, variant_keys):
            problems.add(
                at(entry_path, "variant"),
                f"must name a variant ({', '.join(variant_keys)}); got {variant!r}",
            )
        weight = _weight(entry.get("weight"), at(entry_path, "weight"), problems)
        if weight is not None:
            distribution.append({"variant": variant, "weight": weight})
    if len(distribution) != len(entries):
        return None
    problem = _weights_problem([entry["weight"] for entry in distribution])
    if problem is not None:
        problems.add(entries_path, problem)
        return None
    return {"distribution": distribution}


def check_rules(
    value: Any, variant_keys: list[str], segment_keys: Collection[str] | None, problems: Problems
) -> list[dict[str, Any]]:
    """Ordered rules with unique ids, each a condition (``when``) and a serve."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("rules", 'must be a list of {"id", "when", "serve"}')
        return []
    if len(value) > MAX_RULES:
        problems.add(
            "rules",
            f"at most {MAX_RULES} rules; got {len(value)}: merge rules that serve the same "
            "variant, or move lists of ids into a segment",
        )
        return []
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, rule in enumerate(value):
        path = item("rules", index)
        if not isinstance(rule, dict):
            problems.add(path, 'must be an object {"id", "description", "when", "serve"}')
            continue
        unknown_fields(rule, _RULE_FIELDS, problems, path)
        rule_id = rule.get("id")
        problem = key_problem(rule_id, "a rule id")
        if problem is not None:
            problems.add(at(path, "id"), problem)
        elif rule_id in seen:
            problems.add(
                at(path, "id"), f"duplicate rule id {rule_id!r}: ids must be unique in the flag"
            )
        else:
            seen.add(str(rule_id))
        description = rule.get("description")
        if description is None:
            description = ""
        else:
            problem = text_problem(description, MAX_DESCRIPTION_CHARS)
            if problem is not None:
                problems.add(at(path, "description"), problem)
        when = None
        if "when" not in rule:
            problems.add(
                at(path, "when"),
                'required: the condition under which this rule serves, e.g. {"all": []}',
            )
        else:
            when = check_condition(
                rule["when"], at(path, "when"), problems, segment_keys=segment_keys
            )
        serve = check_serve(rule.get("serve"), at(path, "serve"), variant_keys, problems)
        rules.append({"id": rule_id, "description": description, "when": when, "serve": serve})
    problem = conditions_problem(sum(count_conditions(rule["when"]) for rule in rules))
    if problem is not None:
        problems.add("rules", problem)
    return rules


def check_default(
    value: Any, variants: list[dict[str, Any]], problems: Problems
) -> dict[str, Any] | None:
    """A serve, or ``None`` for "split by the variants' weights" (which then must not all be 0)."""
    if value is None:
        weights = [variant["weight"] for variant in variants if variant["weight"] is not None]
        problem = _weights_problem(weights) if variants and len(weights) == len(variants) else None
        if problem is not None:
            problems.add(
                "default",
                f"null splits users by the variants' weights, but {problem}; give the variants "
                'weights or serve one variant, e.g. {"variant": "off"}',
            )
        return None
    return check_serve(value, "default", [variant["key"] for variant in variants], problems)


def check_tags(value: Any, problems: Problems) -> list[str]:
    """At most 50 unique, non-empty tags of at most 64 characters."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("tags", "must be a list of strings")
        return []
    if len(value) > MAX_TAGS:
        problems.add("tags", f"at most {MAX_TAGS} tags; got {len(value)}")
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_CHARS:
            problems.add(
                item("tags", index),
                f"must be a non-empty string of at most {MAX_TAG_CHARS} characters",
            )
        elif tag in tags:
            problems.add(item("tags", index), f"duplicate tag {tag!r}")
        else:
            tags.append(tag)
    return tags
