"""The texts of compiled definitions, remade only where the compiled object changed
(`evaluation.texts`: the last known record's and the snapshot's one rule for reuse)."""

from __future__ import annotations

from typing import Any

from evaluation.texts import NO_TEXTS, releasing, texts_of


class Compiled:
    def __init__(self, key: str, n: int = 0) -> None:
        self.key, self.n = key, n


made: list[str] = []


def serialise(compiled: Any) -> str:
    made.append(compiled.key)
    return f"{compiled.key}#{compiled.n}"


def test_texts_of__same_objects__every_text_reused_none_made():
    a, b = Compiled("a"), Compiled("b")
    first = texts_of({"a": a, "b": b}, NO_TEXTS, serialise)
    made.clear()

    again = texts_of({"a": a, "b": b}, first, serialise)

    assert made == []
    assert again.texts == ["a#0", "b#0"] and again.texts[0] is first.texts[0]


def test_texts_of__a_replaced_object__only_its_text_made_even_when_equal():
    a, b = Compiled("a"), Compiled("b")
    first = texts_of({"a": a, "b": b}, NO_TEXTS, serialise)
    made.clear()

    second = texts_of({"a": a, "b": Compiled("b", 1)}, first, serialise)

    assert made == ["b"]
    assert second.texts == ["a#0", "b#1"]


def test_texts_of__definitions_added_removed_and_reordered__texts_follow_the_new_order():
    a, b, c = Compiled("a"), Compiled("b"), Compiled("c")
    first = texts_of({"a": a, "b": b, "c": c}, NO_TEXTS, serialise)
    made.clear()

    second = texts_of({"c": c, "d": Compiled("d"), "a": a}, first, serialise)

    assert made == ["d"]
    assert second.keys == ["c", "d", "a"] and second.texts == ["c#0", "d#0", "a#0"]


def test_releasing__replaced_keys__their_objects_let_go_and_their_texts_never_reused():
    a, b = Compiled("a"), Compiled("b")
    held = texts_of({"a": a, "b": b}, NO_TEXTS, serialise)
    new_b = Compiled("b", 2)

    released = releasing(held, {"a": a, "b": new_b}, ["b"])

    assert released.objects == [a, None]
    made.clear()
    assert texts_of({"a": a, "b": new_b}, released, serialise).texts == ["a#0", "b#2"]
    assert made == ["b"]


def test_releasing__any_key__each_object_no_longer_held_let_go():
    a, b = Compiled("a"), Compiled("b")
    held = texts_of({"a": a, "b": b}, NO_TEXTS, serialise)

    assert releasing(held, {"a": a, "b": b}, None) is held
    assert releasing(held, {"a": Compiled("a", 1), "b": b}, None).objects == [None, b]
    assert releasing(held, {"a": a, "b": b}, ["b", "gone"]) is held
