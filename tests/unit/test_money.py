"""Money rules: integer minor units, currency exponents from CLDR, rounding half up."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.kernel.errors import CurrencyMismatch, InvalidInput, UnknownCurrency
from colonnade.kernel.money import Money, exponent, sum_money


def test_currencies_have_their_own_number_of_minor_units() -> None:
    assert (exponent("JPY"), exponent("USD"), exponent("BHD")) == (0, 2, 3)


def test_an_unknown_currency_is_refused_with_its_code() -> None:
    with pytest.raises(UnknownCurrency) as caught:
        Money(100, "ZZZ")
    assert caught.value.problem()["code"] == "unknown_currency"
    assert "ZZZ" in caught.value.detail


@pytest.mark.parametrize("amount", [1.5, "100", True, None])
def test_an_amount_must_be_a_whole_number_of_minor_units(amount: object) -> None:
    with pytest.raises(InvalidInput):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_amounts_in_different_currencies_do_not_add() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "USD") + Money(100, "EUR")


def test_conversion_rounds_to_the_target_currencys_minor_units() -> None:
    assert Money(1999, "USD").converted(Decimal("151.37"), "JPY") == Money(3026, "JPY")
    assert Money(1999, "USD").converted(Decimal("0.92"), "EUR") == Money(1839, "EUR")
    assert Money(1000, "JPY").converted(Decimal("0.0066"), "USD") == Money(660, "USD")


def test_half_a_minor_unit_rounds_up() -> None:
    assert Money.from_decimal(Decimal("0.125"), "USD") == Money(13, "USD")
    assert Money(5, "USD").scaled(Decimal("0.5")) == Money(3, "USD")


@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), max_size=50))
def test_a_sum_is_exact_whatever_the_amounts(amounts: list[int]) -> None:
    total = sum_money([Money(a, "EUR") for a in amounts], "EUR")
    assert total == Money(sum(amounts), "EUR")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["USD", "JPY", "BHD", "EUR"]))
def test_decimal_round_trip_is_lossless(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money
