"""Money: integer minor units and an ISO 4217 code. No float ever holds an amount.

Exponents (how many minor units a currency has) come from the CLDR data that Babel ships,
so JPY has none, USD two and BHD three.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

from colonnade.kernel.errors import CurrencyMismatch, InvalidInput, UnknownCurrency


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency_code(code: str) -> str:
    """The code itself if it names a currency; UnknownCurrency otherwise."""
    if code not in _known_currencies():
        raise UnknownCurrency(code)
    return code


@cache
def exponent(currency: str) -> int:
    return int(get_currency_precision(currency_code(currency)))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidInput(
                f"an amount is a whole number of minor units, not {self.amount!r}",
                amount=repr(self.amount),
            )
        currency_code(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal, currency: str) -> Money:
        """Round a major-unit decimal (such as 12.345 USD) to the currency's minor units."""
        return cls(_to_minor(value, exponent(currency)), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def scaled(self, factor: Decimal) -> Money:
        """This amount times a decimal factor (a tax rate, a discount), rounded half up."""
        return Money(_to_minor(Decimal(self.amount) * factor, 0), self.currency)

    def converted(self, rate: Decimal, currency: str) -> Money:
        """This amount in another currency at `rate` units of it per unit of this one."""
        major = self.to_decimal() * rate
        return Money.from_decimal(major, currency)

    def as_dict(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}


def sum_money(amounts: list[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total


def _to_minor(value: Decimal, places: int) -> int:
    return int(value.scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_UP))
