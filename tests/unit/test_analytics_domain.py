"""Analytics' pure rules: a fact's identity, its day, the window a question may ask about."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from colonnade.kernel.money import Money
from colonnade.modules.analytics.domain import (
    REASON_LENGTH,
    CategorySales,
    Decline,
    Declines,
    Funnel,
    Growth,
    InvalidForecastDay,
    InvalidInsightWindow,
    backtest_error,
    by_category,
    cart_started_fact,
    checkout_refused_fact,
    declines,
    figures,
    forecast_day,
    funnels,
    growth,
    growth_window,
    hourly,
    line_facts,
    paid_fact,
    placed_fact,
    refunded_fact,
    sales_window,
    series,
    series_window,
    since_first,
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


# --- categories and growth ------------------------------------------------------------------

PLACED = {
    "TEE": ("p-tee", frozenset({"tees", "apparel"})),
    "MUG": ("p-mug", frozenset({"kitchen"})),
    "CAP": ("p-cap", frozenset()),
}


def test_a_sku_counts_toward_its_category_and_every_one_above_it_and_unplaced_ones_nowhere() -> (
    None
):
    rows = [
        ("US", "TEE", "USD", 2, 4000),
        ("DE", "TEE", "EUR", 1, 1800),
        ("US", "MUG", "USD", 5, 5000),
        ("US", "CAP", "USD", 9, 9000),
        ("US", "GONE", "USD", 7, 700),
    ]

    assert by_category(rows, PLACED, limit=10) == [
        CategorySales("kitchen", 5, Money(5000, "USD")),
        CategorySales("apparel", 2, Money(4000, "USD")),
        CategorySales("tees", 2, Money(4000, "USD")),
        CategorySales("apparel", 1, Money(1800, "EUR")),
        CategorySales("tees", 1, Money(1800, "EUR")),
    ]
    assert [c.category for c in by_category(rows, PLACED, limit=2)] == ["kitchen", "apparel"]


def test_growth_is_the_change_in_percent_to_one_decimal_and_none_from_nothing() -> None:
    assert Growth("US", None, 2, 3).percent == Decimal("-33.3")
    assert Growth("US", None, 5, 3).percent == Decimal("66.7")
    assert Growth("US", None, 3, 3).percent == Decimal("0.0")
    assert Growth("US", None, 4, 0).percent is None


def test_growth_lists_each_market_then_its_categories() -> None:
    week = [("US", "TEE", "USD", 3, 0), ("JP", "MUG", "JPY", 1, 0)]
    before = [("US", "TEE", "USD", 2, 0), ("US", "CAP", "USD", 4, 0)]

    assert growth(week, before, PLACED) == [
        Growth("JP", None, 1, 0),
        Growth("JP", "kitchen", 1, 0),
        Growth("US", None, 3, 6),
        Growth("US", "apparel", 3, 2),
        Growth("US", "tees", 3, 2),
    ]


def test_the_growth_window_is_two_weeks_before_an_aware_moment() -> None:
    end = datetime(2026, 12, 4, 6, tzinfo=UTC)
    assert growth_window(end) == (end - timedelta(days=14), end - timedelta(days=7), end)
    with pytest.raises(InvalidInsightWindow):
        growth_window(datetime(2026, 12, 4, 6))


def test_a_cart_starts_once_per_start_and_keeps_no_id_but_its_facts() -> None:
    first = cart_started_fact("cart-1", NOON, "US", 2, told_by="event-1")
    refilled = cart_started_fact("cart-1", NOON + timedelta(hours=1), "US", 1, told_by="event-9")
    # Events written before a change told whether it started its cart: one fact per cart.
    old = cart_started_fact("cart-1", NOON, "US", 2)
    old_again = cart_started_fact("cart-1", NOON + timedelta(minutes=5), "US", 3)

    assert first.id != refilled.id
    assert old.id == old_again.id
    assert (first.kind, first.market, first.units, first.order_id) == ("cart_started", "US", 2, "")


def test_a_refused_checkout_keeps_its_code_and_a_reason_no_longer_than_its_column() -> None:
    refused = checkout_refused_fact("co-1", NOON, None, "payment_declined", "x" * 500)

    assert (refused.market, refused.code) == ("", "payment_declined")
    assert refused.reason == "x" * REASON_LENGTH


OUTCOMES = [
    ("US", "cart_started", "", "", 6, 0),
    ("US", "order_placed", "", "", 3, 2),
    ("US", "checkout_refused", "payment_declined", "card_declined", 1, 0),
    ("US", "checkout_refused", "payment_declined", "", 1, 0),
    ("US", "checkout_refused", "out_of_stock", "", 2, 0),
    ("DE", "checkout_refused", "out_of_stock", "", 1, 0),
]


def test_a_funnel_counts_checkouts_as_orders_placed_and_refused_with_the_most_refusals_first() -> (
    None
):
    de, us = funnels(OUTCOMES)

    assert us == Funnel("US", 6, 7, 3, 2, (("out_of_stock", 2), ("payment_declined", 2)))
    assert us.conversion == Decimal("33.3")
    assert de == Funnel("DE", 0, 1, 0, 0, (("out_of_stock", 1),))
    assert de.conversion is None


def test_declines_are_shares_of_the_checkouts_that_asked_for_payment() -> None:
    found = declines(OUTCOMES)

    # Asked: three orders placed and two declines; sold-out checkouts never asked.
    assert (found.asked, found.declined) == (5, 2)
    assert found.reasons == (
        Decline("card_declined", 1, Decimal("20.0")),
        Decline("unknown", 1, Decimal("20.0")),
    )
    assert declines([]) == Declines(0, 0, ())


def test_a_forecast_is_for_a_day_from_tomorrow_to_a_week_ahead() -> None:
    assert forecast_day(None, NOON) == (
        datetime(2026, 11, 28, tzinfo=UTC),
        datetime(2026, 11, 29, tzinfo=UTC),
    )
    assert forecast_day(date(2026, 12, 4), NOON)[0] == datetime(2026, 12, 4, tzinfo=UTC)
    for day in (date(2026, 11, 27), date(2026, 12, 5)):
        with pytest.raises(InvalidForecastDay):
            forecast_day(day, NOON)


def test_history_is_every_hour_from_the_day_a_market_first_sold() -> None:
    start = datetime(2026, 11, 26, tzinfo=UTC)
    series = hourly({NOON: 2, NOON + timedelta(hours=1): 1}, start, start + timedelta(days=2))

    assert len(series) == 48
    assert since_first(series) == series[24:], "from the day of its first order"
    assert since_first([0.0, 0.0]) == []


def test_the_backtest_error_weighs_each_hour_by_its_orders() -> None:
    assert backtest_error([4.0, 0.0, 1.0], [3.0, 0.5, 1.0]) == Decimal("30.0")
    assert backtest_error([0.0, 0.0], [1.0, 0.0]) is None
