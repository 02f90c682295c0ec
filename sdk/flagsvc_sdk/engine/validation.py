"""``validate_flag``, ``validate_segment`` and ``validate_user``: the one definition of "valid".

Each returns a new, normalised document (defaults filled in, every list copied) and never changes
its input. Size caps are checked first and raise ``PayloadTooLarge`` (413 before 422), then depth
(``check_portable``), so that nothing after them walks an unbounded document. Every other problem is
collected, so that one ``ValidationFailed`` lists them all at their exact field paths.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from flagsvc_sdk.engine.condition_rules import check_condition, conditions_problem, count_conditions
from flagsvc_sdk.engine.errors import PayloadTooLarge, ValidationFailed
from flagsvc_sdk.engine.flag_fields import (
    check_default,
    check_rules,
    check_tags,
    check_targets,
    check_variants,
    names_variant,
)
from flagsvc_sdk.engine.limits import (
    FLAG_FIELDS,
    MAX_DESCRIPTION_CHARS,
    MAX_DOCUMENT_BYTES,
    MAX_JSON_DEPTH,
    MAX_NAME_CHARS,
    MAX_USER_ID_CHARS,
    SEGMENT_FIELDS,
)
from flagsvc_sdk.engine.prerequisites import (
    check_prerequisite_graph,
    check_prerequisites,
    check_self_prerequisite,
)
from flagsvc_sdk.engine.problems import (
    Problems,
    attribute_problem,
    id_list_problems,
    key_problem,
    portable_json_problems,
    text_problem,
    unknown_fields,
)
from flagsvc_sdk.engine.values import is_portable_json, is_utf8, json_size, plain_user

FLAG_TYPES: Final = ("boolean", "string", "number", "json")
FLAG_STATES: Final = ("on", "off")
_USER_FIELDS: Final = frozenset({"id", "attributes"})


def check_document_size(doc: Any, field: str) -> None:
    """Raise ``PayloadTooLarge`` when ``doc`` serialises to more than 256 KiB of compact JSON."""
    size = json_size(doc)
    if size is not None and size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(field, MAX_DOCUMENT_BYTES, size)


def check_portable(doc: Mapping[str, Any], subject: str, problems: Problems) -> None:
    """Add a problem for each number other SDKs cannot hold and each string that is not storable
    text, at its exact path; raise at once when ``doc`` nests deeper than ``MAX_JSON_DEPTH``.

    Checked right after the size, before anything else walks ``doc``: every later check (and
    compiling, and evaluating) then only ever sees a document of bounded depth.
    """
    if is_portable_json(doc, MAX_JSON_DEPTH):
        return
    if portable_json_problems(doc, "", problems, root=subject):
        problems.raise_if_any(subject)


def validate_json(value: Any, *, root: str = "body") -> None:
    """Raise ``ValidationFailed`` unless ``value`` is JSON that every SDK reads the same way.

    The rule ``validate_flag`` applies to a definition, for JSON from elsewhere (a request body, a
    user): at most ``MAX_JSON_DEPTH`` levels, integers within +-(2**53 - 1), finite floats, text
    without NUL or lone surrogates. Each problem is named by its path; ``root`` names ``value``.
    """
    if is_portable_json(value, MAX_JSON_DEPTH):
        return
    problems = Problems()
    portable_json_problems(value, "", problems, root=root)
    problems.raise_if_any(root)


def _choice(
    doc: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str, problems: Problems
) -> str | None:
    value = doc.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value in choices:
        return value
    problems.add(name, f"must be one of {', '.join(choices)}; got {value!r}")
    return None


def _text(doc: Mapping[str, Any], name: str, limit: int, problems: Problems) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    problem = text_problem(value, limit)
    if problem is not None:
        problems.add(name, problem)
        return ""
    return str(value)


def validate_flag(
    doc: Mapping[str, Any],
    *,
    segment_keys: Collection[str] | None = None,
    live_flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check and normalise a flag (``rules.md`` "Flag fields", "Conditions"; ``api.md`` "Flags").

    ``segment_keys``, when given, are the segments a rule may refer to. ``live_flags``, when given,
    maps every *other* live flag of the tenant to its normalised document: prerequisites must then
    exist there, name their variants, and keep the graph acyclic (``PrerequisiteCycle``) and at most
    eight deep. A flag that names itself is refused as a cycle of one whether or not ``live_flags``
    is given. Read-only fields (``version``, timestamps) are not accepted: strip them first.
    """
    if not isinstance(doc, Mapping):
        raise ValidationFailed({"flag": ["must be a JSON object"]}, subject="flag")
    check_document_size(doc, "flag")
    problems = Problems()
    check_portable(doc, "flag", problems)
    unknown_fields(doc, FLAG_FIELDS, problems)
    key = doc.get("key")
    problem = key_problem(key, "key")
    if problem is not None:
        problems.add("key", problem)
    flag_type = _choice(doc, "type", FLAG_TYPES, "boolean", problems)
    variants = check_variants(doc, flag_type, problems)
    variant_keys = [variant["key"] for variant in variants]
    is_boolean = flag_type == "boolean"
    flag: dict[str, Any] = {
        "key": key,
        "name": _text(doc, "name", MAX_NAME_CHARS, problems),
        "description": _text(doc, "description", MAX_DESCRIPTION_CHARS, problems),
        "type": flag_type,
        "state": _choice(doc, "state", FLAG_STATES, "off", problems),
        "variants": variants,
        "off_variant": _off_variant(doc.get("off_variant"), variant_keys, is_boolean, problems),
        "targets": check_targets(doc.get("targets"), variant_keys, is_boolean, problems),
        "rules": check_rules(doc.get("rules"), variant_keys, segment_keys, problems),
        "default": check_default(doc.get("default"), variants, problems),
        "prerequisites": check_prerequisites(doc.get("prerequisites"), key, live_flags, problems),
        "bucket_by": _bucket_by(doc.get("bucket_by"), problems),
        "tags": check_tags(doc.get("tags"), problems),
    }
    problems.raise_if_any("flag")
    prerequisite_flags = [entry["flag"] for entry in flag["prerequisites"]]
    check_self_prerequisite(key, prerequisite_flags)
    if live_flags is not None and isinstance(key, str):
        check_prerequisite_graph(key, prerequisite_flags, live_flags)
    return flag


def _off_variant(
    value: Any, variant_keys: list[str], is_boolean: bool, problems: Problems
) -> str | None:
    if value is None:
        if is_boolean and "off" in variant_keys:
            return "off"
        if not variant_keys:
            return None
        problems.add(
            "off_variant",
            "required: name the variant served when the flag is off, a prerequisite fails or "
            "a user is denied",
        )
        return None
    if not names_variant(value, variant_keys):
        problems.add(
            "off_variant", f"must name a variant ({', '.join(variant_keys)}); got {value!r}"
        )
        return None
    return str(value)


def _bucket_by(value: Any, problems: Problems) -> str:
    if value is None:
        return "id"
    problem = attribute_problem(value)
    if problem is not None:
        problems.add("bucket_by", f'{problem} ("id" buckets by the user\'s id)')
        return "id"
    return str(value)


def validate_segment(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise a segment (``rules.md`` "Conditions", last paragraph; ``api.md``
    "Segments").
    """
    if not isinstance(doc, Mapping):
        raise ValidationFailed({"segment": ["must be a JSON object"]}, subject="segment")
    check_document_size(doc, "segment")
    problems = Problems()
    check_portable(doc, "segment", problems)
    unknown_fields(doc, SEGMENT_FIELDS, problems)
    key = doc.get("key")
    problem = key_problem(key, "key")
    if problem is not None:
        problems.add("key", problem)
    when = doc.get("when")
    if when is not None:
        when = check_condition(when, "when", problems, segment_keys=None, in_segment=True)
        problem = conditions_problem(count_conditions(when))
        if problem is not None:
            problems.add("when", problem)
    segment = {
        "key": key,
        "name": _text(doc, "name", MAX_NAME_CHARS, problems),
        "description": _text(doc, "description", MAX_DESCRIPTION_CHARS, problems),
        "included": _ids(doc, "included", problems),
        "excluded": _ids(doc, "excluded", problems),
        "when": when,
    }
    problems.raise_if_any("segment")
    return segment


def _ids(doc: Mapping[str, Any], name: str, problems: Problems) -> list[str]:
    value = doc.get(name)
    if value is None:
        return []
    return id_list_problems(value, name, problems, "user ids")


def validate_user(user: Any) -> dict[str, Any]:
    """Check and normalise an evaluation user: ``{"id": non-empty string, "attributes": object}``.

    The id must be valid Unicode text: it is hashed for bucketing. Attribute names are not checked
    (``values.user_parts`` says why). Two branches of one check: the common shape (a plain
    ``dict`` with a string id and an ``attributes`` dict) is answered by the quick branch,
    ``values.plain_user``, which returns the user itself (it is already normal); anything else
    goes to the full branch, ``check_user_in_full``, which says what is wrong at exact paths or
    returns a normalised copy. ``test_user_check`` proves with random users that wherever the quick
    branch answers, the full one answers the same.
    """
    normal = plain_user(user)
    if normal is not None:
        return normal
    return check_user_in_full(user)


def check_user_in_full(user: Any) -> dict[str, Any]:
    """``validate_user``'s full branch: every problem at its path, or a normalised copy."""
    if not isinstance(user, Mapping):
        raise ValidationFailed(
            {"user": ['must be an object: {"id": "<user id>", "attributes": {...}}']},
            subject="user",
        )
    problems = Problems()
    unknown_fields(user, _USER_FIELDS, problems, path="user")
    user_id = user.get("id")
    if not isinstance(user_id, str) or not user_id:
        problems.add("user.id", "required: a non-empty string")
    elif len(user_id) > MAX_USER_ID_CHARS:
        problems.add("user.id", f"must be at most {MAX_USER_ID_CHARS} characters")
    elif not is_utf8(user_id):
        problems.add("user.id", "must be valid Unicode text (it contains a lone surrogate)")
    attributes = user.get("attributes")
    if attributes is None:
        attributes = {}
    elif not isinstance(attributes, Mapping):
        problems.add("user.attributes", "must be an object of attribute names to values")
    problems.raise_if_any("user")
    return {"id": user_id, "attributes": dict(attributes)}
