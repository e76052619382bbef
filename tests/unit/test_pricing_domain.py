"""Pricing's rules without a database: markets, which price applies, taxes and quotes."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.kernel.errors import UnknownCurrency
from colonnade.kernel.money import Money
from colonnade.modules.pricing.domain import (
    DuplicateCurrency,
    InvalidFxRate,
    InvalidMarketCode,
    InvalidQuantity,
    InvalidTaxRate,
    Market,
    NegativePrice,
    PriceMissing,
    Quote,
    Sale,
    UnknownTimeZone,
    checked_prices,
    fx_rate_of,
    market,
    on_sale,
    price_in,
    quote,
    tax_on,
)

US = Market("US", "United States", "USD", "en-US", False, Decimal("0.0725"))
DE = Market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
JP = Market("JP", "日本", "JPY", "ja-JP", True, Decimal("0.10"))


# --- markets ------------------------------------------------------------------------------


def test_a_market_keeps_what_it_was_given() -> None:
    de = market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    assert de == DE


@pytest.mark.parametrize("code", ["us", "U", "U1", "ABCDEFGHIJK", "", "D E"])
def test_a_market_code_is_two_to_ten_uppercase_letters(code: str) -> None:
    with pytest.raises(InvalidMarketCode) as raised:
        market(code, "Somewhere", "USD", "en-US", False, Decimal("0"))
    assert (raised.value.status, raised.value.code) == (422, "invalid_market_code")
    assert f"'{code}'" in raised.value.detail


@pytest.mark.parametrize("rate", ["1", "1.5", "-0.01", "0.1234567", "NaN", "Infinity"])
def test_a_tax_rate_is_a_fraction_from_zero_up_to_one(rate: str) -> None:
    with pytest.raises(InvalidTaxRate) as raised:
        market("US", "United States", "USD", "en-US", False, Decimal(rate))
    assert raised.value.code == "invalid_tax_rate"


def test_a_tax_free_market_is_allowed() -> None:
    assert market("HK", "Hong Kong", "HKD", "en-HK", True, Decimal("0")).tax_rate == 0


def test_a_market_needs_a_real_currency() -> None:
    with pytest.raises(UnknownCurrency):
        market("ZZ", "Nowhere", "ZZZ", "en-US", False, Decimal("0.1"))


@pytest.mark.parametrize(
    ("base", "quote_", "rate"),
    [("USD", "EUR", "0"), ("USD", "EUR", "-1"), ("USD", "USD", "1"), ("USD", "EUR", "1e-11")],
)
def test_an_exchange_rate_is_positive_between_two_currencies(
    base: str, quote_: str, rate: str
) -> None:
    with pytest.raises(InvalidFxRate):
        fx_rate_of(base, quote_, Decimal(rate))


# --- which price applies ------------------------------------------------------------------


def test_a_price_set_in_the_market_currency_wins_over_conversion() -> None:
    listed = {"USD": Money(1999, "USD"), "EUR": Money(1799, "EUR")}
    assert price_in("EUR", listed, "USD", Decimal("0.92")) == Money(1799, "EUR")


def test_without_its_own_price_the_base_price_is_converted_and_rounded_half_up() -> None:
    # 19.99 USD x 0.92 = 18.3908 EUR -> 18.39
    assert price_in("EUR", {"USD": Money(1999, "USD")}, "USD", Decimal("0.92")) == Money(
        1839, "EUR"
    )


def test_yen_prices_have_no_minor_units() -> None:
    # 19.99 USD x 151.37 = 3025.8863 JPY -> 3026 yen, not 302589 "sen".
    assert price_in("JPY", {"USD": Money(1999, "USD")}, "USD", Decimal("151.37")) == Money(
        3026, "JPY"
    )


def test_without_a_base_price_or_a_rate_the_sku_has_no_price_in_the_market() -> None:
    assert price_in("EUR", {"GBP": Money(1000, "GBP")}, "USD", Decimal("0.92")) is None
    assert price_in("EUR", {"USD": Money(1000, "USD")}, "USD", None) is None


def test_a_price_list_has_one_price_per_currency_and_none_negative() -> None:
    assert checked_prices("MUG", [Money(900, "EUR"), Money(1000, "USD")]) == [
        Money(900, "EUR"),
        Money(1000, "USD"),
    ]
    with pytest.raises(DuplicateCurrency) as twice:
        checked_prices("MUG", [Money(1000, "USD"), Money(1100, "USD")])
    assert "USD" in twice.value.detail
    with pytest.raises(NegativePrice) as negative:
        checked_prices("MUG", [Money(-1, "USD")])
    assert "MUG" in negative.value.detail


# --- taxes and quotes ---------------------------------------------------------------------


def test_vat_is_taken_out_of_a_tax_inclusive_price() -> None:
    # 119.00 EUR with 19% VAT inside: 100.00 net, 19.00 tax.
    assert tax_on(Money(11900, "EUR"), Decimal("0.19"), tax_inclusive=True) == Money(1900, "EUR")


def test_sales_tax_is_added_to_a_tax_exclusive_price_rounded_half_up() -> None:
    # 10.00 USD x 7.25% = 0.725 -> 0.73
    assert tax_on(Money(1000, "USD"), Decimal("0.0725"), tax_inclusive=False) == Money(73, "USD")


def test_a_us_quote_adds_sales_tax_on_top() -> None:
    priced = quote(
        US, [("MUG", 2), ("TEE", 1)], {"MUG": Money(1250, "USD"), "TEE": Money(2000, "USD")}
    )
    assert [(q.sku, q.line_total, q.tax) for q in priced.lines] == [
        ("MUG", Money(2500, "USD"), Money(181, "USD")),  # 181.25
        ("TEE", Money(2000, "USD"), Money(145, "USD")),  # 145.0
    ]
    assert (priced.subtotal, priced.tax, priced.total) == (
        Money(4500, "USD"),
        Money(326, "USD"),
        Money(4826, "USD"),
    )


def test_a_german_quote_shows_the_vat_inside_the_total() -> None:
    priced = quote(DE, [("MUG", 3)], {"MUG": Money(1190, "EUR")})
    assert (priced.subtotal, priced.tax, priced.total) == (
        Money(3570, "EUR"),
        Money(570, "EUR"),
        Money(3570, "EUR"),
    )
    assert priced.currency == "EUR"


def test_an_empty_quote_costs_nothing() -> None:
    priced = quote(JP, [], {})
    assert (priced.subtotal, priced.tax, priced.total) == (Money(0, "JPY"),) * 3


def test_a_quote_refuses_an_unpriced_sku_by_name() -> None:
    with pytest.raises(PriceMissing) as raised:
        quote(US, [("MUG", 1), ("POSTER", 1)], {"MUG": Money(1250, "USD")})
    assert raised.value.status == 409
    assert "POSTER" in raised.value.detail


@pytest.mark.parametrize("quantity", [0, -1, True])
def test_a_quote_line_needs_at_least_one_unit(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        quote(US, [("MUG", quantity)], {"MUG": Money(1250, "USD")})


# --- properties ---------------------------------------------------------------------------

currencies = st.sampled_from(["USD", "EUR", "JPY", "BHD", "CHF"])
rates = st.decimals(min_value=0, max_value=Decimal("0.99"), places=4)
lines = st.lists(
    st.tuples(st.integers(0, 10_000_000), st.integers(1, 1000)), min_size=0, max_size=20
)


def _quoted(where: Market, shopping: list[tuple[int, int]]) -> Quote:
    """A quote with one SKU per (unit amount, quantity) pair."""
    unit_prices = {
        f"SKU-{i}": Money(amount, where.currency) for i, (amount, _) in enumerate(shopping)
    }
    return quote(where, [(f"SKU-{i}", q) for i, (_, q) in enumerate(shopping)], unit_prices)


@given(currency=currencies, tax_inclusive=st.booleans(), tax_rate=rates, shopping=lines)
def test_a_quote_total_is_exactly_its_lines_plus_any_added_tax(
    currency: str, tax_inclusive: bool, tax_rate: Decimal, shopping: list[tuple[int, int]]
) -> None:
    where = Market("XX", "Anywhere", currency, "en-US", tax_inclusive, tax_rate)
    priced = _quoted(where, shopping)

    assert priced.subtotal.amount == sum(q.line_total.amount for q in priced.lines)
    assert priced.tax.amount == sum(q.tax.amount for q in priced.lines)
    expected_total = priced.subtotal if tax_inclusive else priced.subtotal + priced.tax
    assert priced.total == expected_total
    assert {priced.subtotal.currency, priced.tax.currency, priced.total.currency} == {currency}
    for line in priced.lines:
        assert line.line_total == line.unit_price.times(line.quantity)


@given(currency=currencies, tax_inclusive=st.booleans(), tax_rate=rates, shopping=lines)
def test_rounding_never_makes_tax_negative_nor_drifts_more_than_half_a_unit_a_line(
    currency: str, tax_inclusive: bool, tax_rate: Decimal, shopping: list[tuple[int, int]]
) -> None:
    where = Market("XX", "Anywhere", currency, "en-US", tax_inclusive, tax_rate)
    priced = _quoted(where, shopping)

    for line in priced.lines:
        assert line.tax.amount >= 0
        if tax_inclusive:
            assert line.tax.amount <= line.line_total.amount  # the net part is never negative
    subtotal = Decimal(priced.subtotal.amount)
    exact = subtotal * tax_rate / (1 + tax_rate) if tax_inclusive else subtotal * tax_rate
    assert abs(Decimal(priced.tax.amount) - exact) <= Decimal("0.5") * len(priced.lines)


@given(
    cents=st.integers(0, 10_000_000),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=1000, places=4),
    tax_rate=rates,
)
def test_yen_amounts_are_whole_yen_after_conversion_and_tax(
    cents: int, rate: Decimal, tax_rate: Decimal
) -> None:
    yen = price_in("JPY", {"USD": Money(cents, "USD")}, "USD", rate)
    assert yen is not None
    # Yen has no minor units: the amount is whole yen, rounded half up from the exact value.
    exact = Decimal(cents) / 100 * rate
    assert abs(Decimal(yen.amount) - exact) <= Decimal("0.5")
    assert tax_on(yen, tax_rate, tax_inclusive=True).amount <= yen.amount


# --- sales --------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
# SKU-1 is a variant of product P1 in category tees, below apparel.
PLACED = {"SKU-1": ("P1", frozenset({"tees", "apparel"}))}


def a_sale(
    percent_off: int,
    *,
    skus: tuple[str, ...] = (),
    products: frozenset[str] = frozenset(),
    categories: frozenset[str] = frozenset(),
    id: str = "s",
) -> Sale:
    return Sale(
        id,
        id,
        "US",
        percent_off,
        NOW,
        None,
        dict.fromkeys(skus),
        products,
        categories,
    )


def test_the_sale_naming_a_sku_most_closely_sets_its_price_even_when_another_is_lower() -> None:
    regular = {"SKU-1": Money(1000, "USD")}
    by_category = a_sale(50, categories=frozenset({"apparel"}), id="c")
    by_product = a_sale(20, products=frozenset({"P1"}), id="p")
    by_sku = a_sale(10, skus=("SKU-1",), id="k")

    assert on_sale(regular, [by_category], NOW, PLACED)["SKU-1"].price == Money(500, "USD")
    assert on_sale(regular, [by_category, by_product], NOW, PLACED)["SKU-1"].price == Money(
        800, "USD"
    )
    assert on_sale(regular, [by_category, by_product, by_sku], NOW, PLACED)["SKU-1"].price == Money(
        900, "USD"
    )
    # Unplaced (the catalog does not know the SKU), only a sale listing it reaches it.
    assert on_sale(regular, [by_category, by_product], NOW, {})["SKU-1"].compare_at is None


@given(
    percents=st.lists(st.integers(1, 99), min_size=1, max_size=6),
    kinds=st.lists(st.sampled_from(["sku", "product", "tees", "apparel"]), min_size=6),
    order=st.randoms(use_true_random=False),
)
def test_a_shelf_price_does_not_depend_on_the_order_sales_come_in(
    percents: list[int], kinds: list[str], order: random.Random
) -> None:
    regular = {"SKU-1": Money(1999, "USD")}
    made = [
        a_sale(
            p,
            skus=("SKU-1",) if kind == "sku" else (),
            products=frozenset({"P1"}) if kind == "product" else frozenset(),
            categories=frozenset({kind}) if kind in ("tees", "apparel") else frozenset(),
            id=f"s{n}",
        )
        for n, (p, kind) in enumerate(zip(percents, kinds, strict=False))
    ]
    shuffled = list(made)
    order.shuffle(shuffled)

    first = on_sale(regular, made, NOW, PLACED)["SKU-1"]
    assert on_sale(regular, shuffled, NOW, PLACED)["SKU-1"] == first
    assert first.compare_at == regular["SKU-1"]
    assert first.price.amount < regular["SKU-1"].amount


def test_a_market_has_a_known_time_zone_or_none_at_all() -> None:
    berlin = market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"), "Europe/Berlin")
    assert berlin.local(NOW).isoformat() == "2026-11-27T13:00:00+01:00"
    assert market("US", "US", "USD", "en-US", False, Decimal("0")).time_zone == "UTC"
    for wrong in ["Mars/Olympus_Mons", "../etc/passwd", "/etc/localtime", "", "Europe/Berlin "]:
        with pytest.raises(UnknownTimeZone):
            market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"), wrong)
