"""Compiling a tenant's flags and segments once, so that an evaluation is a lookup, a hash and a few
comparisons (``style.md`` "A pure engine with one door"; ``architecture.md`` "The read path").

Compiling validates every definition again: a definition that would be refused on write never
compiles. Regexes are compiled, id lists become frozensets, the hash-input prefix
``"{tenant}:{flag_key}:"`` is built, weights become cumulative thresholds and every possible answer
becomes an ``Outcome``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flagsvc_sdk.engine.bucketing import Distribution, hash_input
from flagsvc_sdk.engine.conditions import CompiledSegment, Node, build_node, predicate
from flagsvc_sdk.engine.errors import (
    InvalidDefinition,
    PayloadTooLarge,
    PrerequisiteCycle,
    ValidationFailed,
)
from flagsvc_sdk.engine.limits import READ_ONLY_FIELDS
from flagsvc_sdk.engine.operators import Check
from flagsvc_sdk.engine.results import (
    DEFAULT,
    ERROR,
    NOT_BUCKETABLE,
    OFF,
    PERCENTAGE_ROLLOUT,
    PREREQUISITE_FAILED,
    RULE_MATCH,
    TARGET_MATCH,
    Outcome,
)
from flagsvc_sdk.engine.validation import validate_flag, validate_segment
from flagsvc_sdk.engine.values import is_utf8


class CompiledPrerequisite:
    """A prerequisite flag, the variants it must give, and the answer when it does not."""

    __slots__ = ("expected", "failed", "flag_key", "variants")

    def __init__(self, flag_key: str, expected: list[str], failed: Outcome) -> None:
        self.flag_key = flag_key
        self.expected = tuple(expected)
        self.variants = frozenset(expected)
        self.failed = failed


class CompiledRule:
    """A rule: its condition as nodes (for traces) and as a native check, and what it serves.

    ``outcome`` is set for a single-variant serve; otherwise ``distribution`` (with its
    ``shares`` and ``choices`` at hand for the hot path) picks by bucket.
    """

    __slots__ = ("choices", "distribution", "id", "node", "outcome", "serve", "shares", "when")

    def __init__(
        self,
        rule_id: str,
        node: Node,
        serve: dict[str, Any],
        outcome: Outcome | None,
        distribution: Distribution[Outcome],
    ) -> None:
        self.id = rule_id
        self.node = node
        self.when: Check = predicate(node)
        self.serve = serve
        self.outcome = outcome
        self.distribution = distribution
        self.shares = distribution.shares
        self.choices = distribution.choices


class CompiledFlag:
    """One flag, ready to evaluate; see ``evaluation.decide`` for the order of the steps.

    ``gated`` says whether any of steps 2-5 (off, prerequisites, deny, allow) can decide, so that
    a flag with none of them goes straight to its rules.
    """

    __slots__ = (
        "allow",
        "allow_outcome",
        "bucket_path",
        "default_choices",
        "default_distribution",
        "default_outcome",
        "default_shares",
        "deny",
        "deny_outcome",
        "doc",
        "gated",
        "is_off",
        "key",
        "not_bucketable",
        "off_outcome",
        "outcomes",
        "prefix",
        "prerequisites",
        "rules",
        "segment_keys",
        "version",
    )

    def __init__(
        self,
        doc: dict[str, Any],
        version: int,
        tenant: str,
        segments: Mapping[str, CompiledSegment],
    ) -> None:
        self.doc = doc
        self.key: str = doc["key"]
        # Every answer this flag can give (``_outcome`` adds each): the usage reporter reads their
        # ``served`` counters.
        self.outcomes: list[Outcome] = []
        self.version = version
        self.prefix = hash_input(tenant, self.key, "")
        self.bucket_path: tuple[str, ...] | None = (
            None if doc["bucket_by"] == "id" else tuple(doc["bucket_by"].split("."))
        )
        self.is_off = doc["state"] == "off"
        off = doc["off_variant"]
        self.off_outcome = self._outcome(off, OFF)
        self.not_bucketable = self._outcome(off, ERROR, error_code=NOT_BUCKETABLE)
        self.prerequisites = tuple(
            CompiledPrerequisite(
                entry["flag"],
                entry["variants"],
                self._outcome(off, PREREQUISITE_FAILED, extra={"prerequisite": entry["flag"]}),
            )
            for entry in doc["prerequisites"]
        )
        targets = doc["targets"]
        self.deny = frozenset(targets["deny"])
        self.deny_outcome = self._outcome(off, TARGET_MATCH, extra={"target": "deny"})
        self.allow = frozenset(targets["allow"])
        allow_variant = targets["allow_variant"] or off  # only None while "allow" is empty
        self.allow_outcome = self._outcome(allow_variant, TARGET_MATCH, extra={"target": "allow"})
        self.rules = tuple(self._rule(rule, segments) for rule in doc["rules"])
        # The segments its rules refer to: a change to one of them recompiles it (``recompile``).
        self.segment_keys = frozenset(
            key for rule in doc["rules"] for key in _segment_references(rule["when"])
        )
        default = doc["default"]
        if default is None:
            default = {
                "distribution": [
                    {"variant": variant["key"], "weight": variant["weight"]}
                    for variant in doc["variants"]
                ]
            }
        self.default_outcome, self.default_distribution = self._serve(
            default, DEFAULT, PERCENTAGE_ROLLOUT, None
        )
        self.default_shares = self.default_distribution.shares
        self.default_choices = self.default_distribution.choices
        self.gated = bool(self.is_off or self.prerequisites or self.deny or self.allow)

    def _outcome(
        self,
        variant: str,
        reason: str,
        *,
        rule_id: str | None = None,
        error_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Outcome:
        value = next(entry["value"] for entry in self.doc["variants"] if entry["key"] == variant)
        outcome = Outcome(
            flag_key=self.key,
            variant=variant,
            value=value,
            reason=reason,
            flag_version=self.version,
            rule_id=rule_id,
            error_code=error_code,
            extra=extra,
        )
        self.outcomes.append(outcome)
        return outcome

    def _serve(
        self, serve: dict[str, Any], single_reason: str, split_reason: str, rule_id: str | None
    ) -> tuple[Outcome | None, Distribution[Outcome]]:
        """A single-variant serve gives its ``Outcome``; a distribution gives ``None`` and the
        split.
        """
        if "variant" in serve:
            outcome = self._outcome(serve["variant"], single_reason, rule_id=rule_id)
            return outcome, Distribution([1], [outcome])
        entries = serve["distribution"]
        outcomes = [
            self._outcome(entry["variant"], split_reason, rule_id=rule_id) for entry in entries
        ]
        return None, Distribution([entry["weight"] for entry in entries], outcomes)

    def _rule(self, rule: dict[str, Any], segments: Mapping[str, CompiledSegment]) -> CompiledRule:
        outcome, distribution = self._serve(rule["serve"], RULE_MATCH, RULE_MATCH, rule["id"])
        return CompiledRule(
            rule["id"], build_node(rule["when"], segments), rule["serve"], outcome, distribution
        )


class CompiledRuleset:
    """A tenant's compiled flags and segments at one ruleset ``version``; never changed once built.

    ``flags`` maps each live flag's key to its ``CompiledFlag``: a ``dict``, so that a compiled
    lookup of a flag is the dict's own (not the generic mapping protocol).
    """

    __slots__ = ("flags", "segments", "tenant", "version")

    def __init__(
        self,
        tenant: str,
        version: str,
        flags: dict[str, CompiledFlag],
        segments: Mapping[str, CompiledSegment],
    ) -> None:
        self.tenant = tenant
        self.version = version
        self.flags = flags
        self.segments = segments

    def with_flag(self, doc: Mapping[str, Any]) -> CompiledRuleset:
        """A new ruleset with this flag (a normalised document plus ``version``) added or replaced.

        Used to dry-run an unsaved definition; this ruleset is left as it was.
        """
        flag = _compile_flag(doc, self.tenant, self.segments)
        return CompiledRuleset(
            self.tenant, self.version, {**self.flags, flag.key: flag}, self.segments
        )

    def __repr__(self) -> str:
        return (
            f"CompiledRuleset(tenant={self.tenant!r}, version={self.version!r}, "
            f"flags={len(self.flags)})"
        )


def _split_stored(raw: Mapping[str, Any], kind: str) -> tuple[dict[str, Any], int | None]:
    """The definition without its read-only fields, and its ``version``."""
    if not isinstance(raw, Mapping):
        raise InvalidDefinition(kind, "?", {kind: ["must be a JSON object"]})
    version = raw.get("version")
    key = str(raw.get("key"))
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise InvalidDefinition(kind, key, {"version": [f"must be an integer; got {version!r}"]})
    return {name: value for name, value in raw.items() if name not in READ_ONLY_FIELDS}, version


def _checked(
    kind: str, raw: Mapping[str, Any], check: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    try:
        return check(raw)
    except ValidationFailed as error:
        raise InvalidDefinition(kind, str(raw.get("key")), error.fields) from error
    except PayloadTooLarge as error:
        raise InvalidDefinition(kind, str(raw.get("key")), {error.field: [str(error)]}) from error
    except PrerequisiteCycle as error:
        fields = {"prerequisites": [str(error)]}
        raise InvalidDefinition(kind, str(raw.get("key")), fields) from error


def _segment_references(condition: Mapping[str, Any]) -> list[str]:
    """The segment keys a condition that ``check_condition`` normalised refers to."""
    if "segment" in condition:
        return [condition["segment"]]
    if "not" in condition:
        return _segment_references(condition["not"])
    for kind in ("all", "any"):
        if kind in condition:
            return [key for child in condition[kind] for key in _segment_references(child)]
    return []


def _compile_flag(
    raw: Mapping[str, Any], tenant: str, segments: Mapping[str, CompiledSegment]
) -> CompiledFlag:
    """One flag's compile step: validate it (its segments must be in ``segments``) and compile it.

    A compiled flag depends on its own document, the tenant and the segments it refers to, and on
    nothing else: prerequisites are looked up by key at evaluation.
    """
    body, version = _split_stored(raw, "flag")
    if version is None:
        raise InvalidDefinition(
            "flag", str(body.get("key")), {"version": ["required: the flag's version"]}
        )
    doc = _checked("flag", body, lambda flag: validate_flag(flag, segment_keys=segments.keys()))
    return CompiledFlag(doc, version, tenant, segments)


def _compile_segment(raw: Mapping[str, Any]) -> CompiledSegment:
    """One segment's compile step: a segment depends on its own document only."""
    body, segment_version = _split_stored(raw, "segment")
    doc = _checked("segment", body, validate_segment)
    return CompiledSegment(doc, segment_version)


def _is_archived(raw: Mapping[str, Any]) -> bool:
    return isinstance(raw, Mapping) and raw.get("archived_at") is not None


def _in_key_order(items: dict[str, Any]) -> dict[str, Any]:
    """Flags and segments are kept in key order (code points), whatever order they were given in,
    so that a ruleset built in steps lists them exactly as one compiled at once."""
    return {key: items[key] for key in sorted(items)}


def compile_ruleset(
    *,
    tenant: str,
    version: str,
    flags: Iterable[Mapping[str, Any]],
    segments: Iterable[Mapping[str, Any]],
) -> CompiledRuleset:
    """Compile a tenant's live flags (each a normalised document plus ``version``) and its segments.

    Raises ``InvalidDefinition`` (a ``ValidationFailed``) naming the first definition that is
    invalid, including one that refers to a segment not given here or repeats a key. Flags whose
    ``archived_at`` is set are left out: archived flags are not evaluated (``rules.md`` step 1). A
    prerequisite missing from ``flags`` is not an error here: it fails at evaluation. Flags and
    segments are held in key order.
    """
    if not isinstance(tenant, str) or not tenant or not is_utf8(tenant):
        raise ValueError("tenant must be a non-empty string of valid Unicode text")
    compiled_segments: dict[str, CompiledSegment] = {}
    for raw in segments:
        segment = _compile_segment(raw)
        if segment.key in compiled_segments:
            raise InvalidDefinition(
                "segment", segment.key, {"key": ["the ruleset holds this key twice"]}
            )
        compiled_segments[segment.key] = segment
    compiled_flags: dict[str, CompiledFlag] = {}
    for raw in flags:
        if _is_archived(raw):
            continue
        flag = _compile_flag(raw, tenant, compiled_segments)
        if flag.key in compiled_flags:
            raise InvalidDefinition("flag", flag.key, {"key": ["the ruleset holds this key twice"]})
        compiled_flags[flag.key] = flag
    return CompiledRuleset(
        tenant, version, _in_key_order(compiled_flags), _in_key_order(compiled_segments)
    )


def recompile(
    compiled: CompiledRuleset,
    *,
    version: str,
    flags: Iterable[Mapping[str, Any]] = (),
    segments: Iterable[Mapping[str, Any]] = (),
    removed_flags: Iterable[str] = (),
    removed_segments: Iterable[str] = (),
) -> CompiledRuleset:
    """``compiled`` with some flags and segments written or removed, at ruleset ``version``.

    The answer is the ruleset ``compile_ruleset`` would build from ``compiled``'s definitions with
    these changes applied: the same per-definition compile steps run on what changed and on what
    depends on it, and nothing else is touched. What depends on what:

    - a flag (written, archived or removed) is compiled from its own document; flags that name it as
      a prerequisite find it by key at evaluation and are not recompiled;
    - a segment (written or removed) is compiled from its own document, and every flag whose rules
      refer to it is compiled again from the document it was compiled from (``CompiledFlag.doc``).

    ``flags`` are documents plus ``version``, as for ``compile_ruleset``; one whose ``archived_at``
    is set is removed. A key both given and removed is removed. Raises ``InvalidDefinition`` as
    ``compile_ruleset`` would, for instance for a flag that still refers to a removed segment or a
    key given twice; ``compiled`` is never changed.
    """
    gone_segments = set(removed_segments)
    new_segments: dict[str, CompiledSegment] = {}
    for raw in segments:
        segment = _compile_segment(raw)
        if segment.key in new_segments:
            raise InvalidDefinition(
                "segment", segment.key, {"key": ["the ruleset holds this key twice"]}
            )
        new_segments[segment.key] = segment
    all_segments = dict(compiled.segments)
    all_segments.update(new_segments)
    for key in gone_segments:
        all_segments.pop(key, None)
    changed_segments = gone_segments | new_segments.keys()

    gone_flags = set(removed_flags)
    written: dict[str, Mapping[str, Any]] = {}
    for raw in flags:
        if _is_archived(raw):
            gone_flags.add(str(raw.get("key")))
            continue
        given = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(given, str) and given in written:
            raise InvalidDefinition("flag", given, {"key": ["the ruleset holds this key twice"]})
        written[str(given)] = raw
    all_flags = dict(compiled.flags)
    for key in gone_flags:
        all_flags.pop(key, None)
        written.pop(key, None)
    if changed_segments:
        for flag in compiled.flags.values():
            if (
                flag.key in all_flags
                and flag.key not in written
                and flag.segment_keys & changed_segments
            ):
                written[flag.key] = {**flag.doc, "version": flag.version}
    added = False
    for raw in written.values():
        flag = _compile_flag(raw, compiled.tenant, all_segments)
        added = added or flag.key not in all_flags
        all_flags[flag.key] = flag
    if added:
        all_flags = _in_key_order(all_flags)
    if new_segments.keys() - compiled.segments.keys():
        all_segments = _in_key_order(all_segments)
    return CompiledRuleset(compiled.tenant, version, all_flags, all_segments)
