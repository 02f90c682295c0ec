"""The admin's operator words cover exactly the engine's operators (the engine is the one definition)."""

from datetime import UTC, datetime

from flagsvc_sdk.engine.operators import OPERATORS as ENGINE_OPERATORS

from flags.admin.vocabulary import OPERATOR_WORDS, OPERATORS, format_datetime


def test_every_engine_operator_has_words_and_no_word_names_an_unknown_operator() -> None:
    assert set(OPERATOR_WORDS) == set(ENGINE_OPERATORS)
    assert len({entry["words"] for entry in OPERATORS}) == len(OPERATORS)


def test_the_admin_date_format_is_utc_in_iso_order() -> None:
    assert format_datetime(datetime(2026, 12, 1, 10, 5, tzinfo=UTC)) == "2026-12-01 10:05 UTC"
    assert format_datetime(None) == ""
