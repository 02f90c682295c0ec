"""The ruleset check of many written flags at once (`flags.integrity.broken_flags`, what an import of
10,000 flags runs twice): each flag is validated against its neighbourhood in the prerequisite graph,
not against every live flag, and the verdicts are exactly those of validating it against every other
live flag (what the check did before, N x N)."""

from __future__ import annotations

from typing import Any

from flagsvc_sdk.engine import PrerequisiteCycle, validate_flag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flags import integrity
from flags.integrity import broken_flags

KEYS = [f"f{n}" for n in range(12)]


def _flag(key: str, prerequisites: list[tuple[str, str]]) -> dict[str, Any]:
    return validate_flag(
        {
            "key": key,
            "type": "string",
            "state": "on",
            "variants": [{"key": "a", "value": "a"}, {"key": "b", "value": "b"}],
            "off_variant": "a",
            "default": {"variant": "a"},
            "prerequisites": [{"flag": flag, "variants": [variant]} for flag, variant in prerequisites],
        }
    )


def _verdicts(found: list[integrity.BrokenFlag]) -> dict[str, tuple[bool, str, Any]]:
    return {
        flag.key: (flag.written, "cycle", str(flag.error))
        if isinstance(flag.error, PrerequisiteCycle)
        else (flag.written, "invalid", flag.error.fields)
        for flag in found
    }


class _EveryOtherFlag(integrity._Neighbourhoods):
    """The check as it was: each flag validated against every other live flag."""

    def of(self, key: str, doc: Any) -> dict[str, Any]:
        return {other: node for other, node in self.live.items() if other != key}


def _as_before(flags: dict[str, dict[str, Any]], written: set[str], monkeypatch: Any) -> Any:
    with monkeypatch.context() as patched:
        patched.setattr(integrity, "_Neighbourhoods", _EveryOtherFlag)
        return _verdicts(
            broken_flags(flags=flags, segment_keys=(), flags_written=written, segments_written=())
        )


rulesets = st.dictionaries(
    st.sampled_from(KEYS),
    st.lists(
        st.tuples(st.sampled_from([*KEYS, "missing"]), st.sampled_from(["a", "b", "c"])),
        max_size=3,
        unique_by=lambda pair: pair[0],
    ),
    min_size=1,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prerequisites=rulesets, data=st.data())
def test_verdicts_are_those_of_validating_against_every_other_flag(prerequisites, data, monkeypatch):
    # No flag names itself (that is refused before the graph is looked at, in both).
    flags = {key: _flag(key, [p for p in pairs if p[0] != key]) for key, pairs in prerequisites.items()}
    written = set(data.draw(st.lists(st.sampled_from(sorted(flags)), min_size=1, unique=True)))
    found = broken_flags(flags=flags, segment_keys=(), flags_written=written, segments_written=())
    assert _verdicts(found) == _as_before(flags, written, monkeypatch)


def test_a_chain_too_deep_is_found_from_the_middle_as_before(monkeypatch):
    chain = {f"c{n}": _flag(f"c{n}", [(f"c{n + 1}", "a")] if n < 9 else []) for n in range(10)}
    found = broken_flags(flags=chain, segment_keys=(), flags_written={"c5"}, segments_written=())
    assert [flag.key for flag in found] == ["c5"]
    assert "would be 9 deep" in str(found[0].error.fields)  # type: ignore[union-attr]
    assert _verdicts(found) == _as_before(chain, {"c5"}, monkeypatch)


def test_each_written_flag_is_validated_against_its_neighbourhood_only(monkeypatch):
    """10,000 written flags, most without prerequisites: each validation sees the few flags it is
    connected to, so the check costs about N, not N x N."""
    flags = {f"plain-{n}": _flag(f"plain-{n}", []) for n in range(10_000)}
    flags["base"] = _flag("base", [])
    flags |= {f"uses-{n}": _flag(f"uses-{n}", [("base", "b")]) for n in range(50)}
    seen: dict[str, int] = {}
    real = integrity.validate_flag

    def counting(doc: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen[doc["key"]] = len(kwargs["live_flags"])
        return real(doc, **kwargs)

    monkeypatch.setattr(integrity, "validate_flag", counting)
    assert broken_flags(flags=flags, segment_keys=(), flags_written=set(flags), segments_written=()) == []
    assert len(seen) == len(flags)
    assert {seen[f"plain-{n}"] for n in range(10_000)} == {0}
    assert seen["uses-7"] == 1  # base
    assert seen["base"] == 50  # every flag that needs it (the chain above it)
