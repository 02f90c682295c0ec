"""The admin's users (evaluation.admin_users): key/value rows, and a sample whose attributes vary."""

from __future__ import annotations

from collections import Counter

import pytest
from django.http import QueryDict

from evaluation.admin_users import (
    Row,
    RowsRefused,
    attribute_values,
    attributes_from_rows,
    rows_from,
    sample_users,
)


def test_rows__typed_values_and_dotted_names_nest() -> None:
    rows = [
        Row("country", "text", "NL"),
        Row("age", "number", "34"),
        Row("score", "number", "2.5"),
        Row("beta", "boolean", "true"),
        Row("org.plan", "text", "pro"),
        Row("", "text", "ignored: a blank new row"),
    ]
    assert attributes_from_rows(rows) == {
        "country": "NL",
        "age": 34,
        "score": 2.5,
        "beta": True,
        "org": {"plan": "pro"},
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([Row("age", "number", "thirty")], "age: 'thirty' is not a number (e.g. 42 or 2.5)."),
        ([Row("age", "number", "nan")], "age: 'nan' is not a finite number."),
        ([Row("beta", "boolean", "yes")], "beta: choose true or false."),
        ([Row("a", "text", "1"), Row("a", "text", "2")], "a is in two rows; keep one."),
        (
            [Row("org", "text", "x"), Row("org.plan", "text", "y")],
            "org.plan: org has a value already, so it cannot hold org.plan.",
        ),
        ([Row("a..b", "text", "x")], "a..b: dotted names need a name between every dot, e.g. org.plan."),
        ([Row("a", "json", "x")], "a: the type is text, number or true/false."),
    ],
)
def test_rows__refused_with_a_message_that_names_the_row(rows: list[Row], message: str) -> None:
    with pytest.raises(RowsRefused) as refused:
        attributes_from_rows(rows)
    assert str(refused.value) == message


def test_rows_from_a_form__repeated_fields_and_a_bound() -> None:
    data = QueryDict(mutable=True)
    data.setlist("_preview_attr_key", ["country", " plan "])
    data.setlist("_preview_attr_type", ["text", "text"])
    data.setlist("_preview_attr_value", ["NL", "pro"])
    assert rows_from(data) == [Row("country", "text", "NL"), Row("plan", "text", "pro")]
    data.setlist("_preview_attr_key", ["k"] * 51)
    with pytest.raises(RowsRefused):
        rows_from(data)


def test_attribute_values__the_values_conditions_mention_near_values_and_others() -> None:
    pool = attribute_values(
        [
            {
                "all": [
                    {"attr": "country", "op": "in", "value": ["NL", "BE"]},
                    {"attr": "age", "op": "gte", "value": 18},
                ]
            },
            {"not": {"attr": "app_version", "op": "semver_gte", "value": "2.10.0"}},
            {"attr": "id", "op": "eq", "value": "u-1"},
        ]
    )
    assert set(pool) == {"country", "age", "app_version"}, "the user id is not an attribute to vary"
    assert {"NL", "BE", "other"} <= set(pool["country"])
    assert {17, 18, 19} <= set(pool["age"]) and min(pool["age"]) < 17
    assert {"2.10.0", "2.10.1", "2.11.0"} <= set(pool["app_version"])


def test_sample_users__own_ids_and_varied_attributes_reproducibly() -> None:
    conditions = [{"attr": "country", "op": "in", "value": ["NL", "BE"]}]
    users, varied = sample_users(
        size=1000, seed="checkout", conditions=conditions, base={"country": "NL", "plan": "pro"}
    )
    assert varied == ["country"]
    assert len({u["id"] for u in users}) == 1000
    countries = Counter(u["attributes"].get("country") for u in users)
    assert countries["NL"] < 500 and countries["BE"] > 50 and countries[None] > 50 and countries["other"] > 50
    assert all(u["attributes"]["plan"] == "pro" for u in users), "typed attributes the rules do not test stay"
    again, _ = sample_users(
        size=1000, seed="checkout", conditions=conditions, base={"country": "NL", "plan": "pro"}
    )
    assert again == users


def test_sample_users__bucket_by_attribute_varies_too() -> None:
    users, varied = sample_users(size=200, seed="f", conditions=[], base={}, bucket_by="account_id")
    assert varied == ["account_id"]
    assert len({u["attributes"]["account_id"] for u in users}) > 50
