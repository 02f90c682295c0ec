"""The serialised text of each compiled definition of a ruleset, made again only where it changed.

The last known record (`evaluation.cache.kept_body`) and the snapshot (`evaluation.snapshot`) are both
JSON arrays holding every compiled flag and segment of a tenant. After one write, all the other
compiled objects are the very ones of the version before (a catch-up keeps them), so their texts are
reused: a text belongs to the compiled object it was made from and is reused only while that object
is the same one (identity, not equality: nothing can drift).

The comparison runs in C (`map`, `operator.is_`, `itertools.compress`), not in a Python loop over
the definitions: at 10,000 flags the Python loop was most of a record's 13.6 ms (benchmarks/
bench_last_known.py, RESULTS.md); what is left is proportional to what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from itertools import compress
from operator import is_, is_not
from typing import Any

Serialise = Callable[[Any], str]
"""A compiled definition's text (the caller's serialisation of its document)."""


@dataclass(frozen=True, slots=True)
class Texts:
    """One kind of definition (flags or segments), in the ruleset's order: each key, the compiled
    object its text was made from (None once that object was replaced), and the text."""

    keys: list[str]
    objects: list[object | None]
    texts: list[str]

    def text(self, key: str) -> str | None:
        """The text held for `key`, if any (the tests' view; the hot paths use the lists)."""
        try:
            return self.texts[self.keys.index(key)]
        except ValueError:
            return None


NO_TEXTS = Texts([], [], [])


def texts_of(definitions: Mapping[str, object], held: Texts, serialise: Serialise) -> Texts:
    """The texts of `definitions` (key → compiled object, in order), reusing each text of `held`
    whose compiled object is the same one, and serialising the others."""
    keys = list(definitions)
    objects: list[object | None] = list(definitions.values())
    if held.keys == keys:  # no definition added or removed: the lists line up
        texts = held.texts.copy()
        before: list[object | None] = held.objects
    else:
        held_texts = dict(zip(held.keys, held.texts, strict=True))
        texts = list(map(held_texts.get, keys))  # type: ignore[arg-type]  # None where there is none yet
        before = list(map(dict(zip(held.keys, held.objects, strict=True)).get, keys))
    for index in compress(range(len(keys)), map(is_not, objects, before)):
        texts[index] = serialise(objects[index])
    return Texts(keys, objects, texts)


def releasing(held: Texts, definitions: Mapping[str, object], replaced: Collection[str] | None) -> Texts:
    """`held` without the compiled objects that `definitions` no longer holds (their texts can never
    be reused): a process that does not write the next record must not keep replaced compiled
    objects alive through its texts. `replaced`: the keys that may have changed, or None for any."""
    if replaced is None:
        same = list(map(is_, map(definitions.get, held.keys), held.objects))
        if all(same):
            return held
        objects = [obj if kept else None for obj, kept in zip(held.objects, same, strict=True)]
        return Texts(held.keys, objects, held.texts)
    objects = held.objects
    for key in replaced:
        try:
            index = held.keys.index(key)  # in C; a catch-up replaces a few keys
        except ValueError:
            continue
        if objects[index] is not None and definitions.get(key) is not objects[index]:
            if objects is held.objects:
                objects = objects.copy()
            objects[index] = None
    return held if objects is held.objects else Texts(held.keys, objects, held.texts)


@dataclass(frozen=True, slots=True)
class RulesetTexts:
    """A ruleset's flag texts and segment texts."""

    flags: Texts = NO_TEXTS
    segments: Texts = NO_TEXTS

    def text(self, name: str) -> str | None:
        """`flag:<key>` or `segment:<key>`: its text, if held."""
        kind, _, key = name.partition(":")
        return (self.flags if kind == "flag" else self.segments).text(key)

    @property
    def held(self) -> list[str]:
        """The names whose compiled object is still held (`flag:<key>`, `segment:<key>`), sorted."""
        return sorted(
            [
                f"flag:{key}"
                for key, obj in zip(self.flags.keys, self.flags.objects, strict=True)
                if obj is not None
            ]
            + [
                f"segment:{key}"
                for key, obj in zip(self.segments.keys, self.segments.objects, strict=True)
                if obj is not None
            ]
        )


NO_RULESET_TEXTS = RulesetTexts()
