"""Analytics' pure rules: a fact's identity, its day, the window a question may ask about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from colonnade.kernel.money import Money
from colonnade.modules.analytics.domain import (
    InvalidInsightWindow,
    figures,
    line_facts,
    paid_fact,
    placed_fact,
    refunded_fact,
    sales_window,
    series,
    series_window,
    units_of,
)

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_the_same_happening_told_twice_is_the_same_fact() -> None:
    total = {"amount": 1100, "currency": "USD"}

    assert placed_fact("o-1", NOON, "US", total, 2) == placed_fact("o-1", NOON, "US", total, 2)
    assert paid_fact("o-1", NOON, total).id == paid_fact("o-1", NOON + timedelta(1), total).id
    # Two refunds of one order are two facts: the refunded total after each tells them apart.
    first = refunded_fact("o-1", NOON, {"amount": 100, "currency": "USD"}, "100")
    second = refunded_fact("o-1", NOON, {"amount": 100, "currency": "USD"}, "200")
    assert first.id != second.id


def test_a_fact_falls_on_its_utc_day() -> None:
    tokyo_morning = datetime(2026, 11, 28, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    fact = placed_fact("o-1", tokyo_morning, "JP", {"amount": 500, "currency": "JPY"}, 1)

    assert fact.day == "2026-11-27"


def test_units_are_the_lines_quantities() -> None:
    assert units_of([{"quantity": 2}, {"quantity": 3}]) == 5
    assert units_of([]) == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOON, NOON),
        (NOON, NOON - timedelta(seconds=1)),
        (NOON, NOON + timedelta(days=367)),
        (NOON.replace(tzinfo=None), NOON + timedelta(days=1)),
    ],
)
def test_an_empty_backwards_overlong_or_naive_window_is_refused(
    start: datetime, end: datetime
) -> None:
    with pytest.raises(InvalidInsightWindow) as refused:
        sales_window(start, end)
    assert refused.value.code == "invalid_insight_window"


def test_a_window_is_taken_in_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    start, end = sales_window(
        datetime(2026, 11, 27, tzinfo=berlin), datetime(2026, 11, 28, tzinfo=berlin)
    )

    assert start == datetime(2026, 11, 26, 23, tzinfo=UTC)
    assert end - start == timedelta(days=1)


def test_figures_list_currencies_in_order_and_add_up_the_orders() -> None:
    shown = figures([("USD", 3, 9000, 500), ("EUR", 1, 4778, 0)])

    assert shown.orders == 4
    assert shown.revenue == (Money(4778, "EUR"), Money(9000, "USD"))
    assert shown.refunded == (Money(0, "EUR"), Money(500, "USD"))


def test_a_series_lists_every_step_from_the_one_holding_the_start() -> None:
    start = NOON + timedelta(minutes=20)
    rows = [(int((NOON + timedelta(hours=1)).timestamp()), "USD", 2, 3000)]

    buckets = series(start, NOON + timedelta(hours=2, minutes=5), "hour", rows)

    assert [b.start for b in buckets] == [NOON + timedelta(hours=h) for h in range(3)]
    assert [b.orders for b in buckets] == [0, 2, 0]
    assert buckets[1].revenue == (Money(3000, "USD"),)


def test_hours_are_asked_for_a_week_at_most() -> None:
    assert series_window(NOON, NOON + timedelta(days=7), "hour")
    with pytest.raises(InvalidInsightWindow):
        series_window(NOON, NOON + timedelta(days=7, seconds=1), "hour")
    assert series_window(NOON, NOON + timedelta(days=366), "day")


def test_a_line_fact_keeps_its_sku_units_and_what_it_cost() -> None:
    line = {"sku": "MUG", "quantity": 3, "line_total": {"amount": 2700, "currency": "EUR"}}

    (fact,) = line_facts("o-1", NOON, "DE", [line])

    assert (fact.sku, fact.units, fact.amount, fact.currency) == ("MUG", 3, 2700, "EUR")
    assert fact.id == "order_line:o-1:0"
