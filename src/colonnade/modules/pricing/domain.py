"""Pricing's rules: markets, which price a SKU has in a market, and taxes on a quote.

Pure: no I/O. Taxes are worked out per line and summed, so a quote's tax is always the sum
of its lines' taxes and its total the sum of its lines (plus tax where prices exclude it);
no rounding happens on the quote as a whole, so nothing can drift between lines and total.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from colonnade.kernel.errors import Conflict, DuplicateCurrency, InvalidInput
from colonnade.kernel.money import Money, currency_code, sum_money
from colonnade.kernel.shapes import LOCALE_TAG

MARKET_CODE = re.compile(r"^[A-Z]{2,10}$")
# A BCP 47 tag's shape; Babel alone would also take 'en.UTF-8' or 'de@euro' for a locale.
LOCALE_SHAPE = re.compile(LOCALE_TAG)
MAX_NAME = 200
# Tax rates are kept to this many decimal places (0.0725 needs 4; a few rare ones need 6).
TAX_RATE_PLACES = 6
FX_RATE_PLACES = 10


# --- errors -------------------------------------------------------------------------------


class UnknownMarket(InvalidInput):
    code = "unknown_market"

    def __init__(self, market: str, known: Sequence[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(
            f"there is no market with the code '{market}' (known markets: {listed})",
            market=market,
            known_markets=list(known),
        )


class InvalidMarketCode(InvalidInput):
    code = "invalid_market_code"

    def __init__(self, market: str) -> None:
        super().__init__(
            f"a market code is 2 to 10 uppercase letters, such as US or EU; got '{market}'",
            market=market,
        )


class InvalidMarketName(InvalidInput):
    code = "invalid_market_name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a market needs a name of 1 to {MAX_NAME} characters; got {len(name.strip())}",
        )


class UnknownLocale(InvalidInput):
    code = "unknown_locale"

    def __init__(self, locale: str) -> None:
        super().__init__(
            f"'{locale}' is not a known locale; use a tag such as en-US or de-DE",
            locale=locale,
        )


class InvalidTaxRate(InvalidInput):
    code = "invalid_tax_rate"

    def __init__(self, rate: object) -> None:
        super().__init__(
            f"a tax rate is a decimal fraction from 0 up to (not including) 1, with at most "
            f"{TAX_RATE_PLACES} decimal places, such as 0.19 for 19%; got {rate}",
            tax_rate=str(rate),
        )


class InvalidFxRate(InvalidInput):
    code = "invalid_fx_rate"

    def __init__(self, base: str, quote: str, rate: object) -> None:
        super().__init__(
            f"an exchange rate {base}->{quote} is a positive decimal with at most "
            f"{FX_RATE_PLACES} decimal places (units of {quote} per {base}); got {rate}",
            rate=str(rate),
        )


class NegativePrice(InvalidInput):
    code = "negative_price"

    def __init__(self, sku: str, price: Money) -> None:
        super().__init__(
            f"a price cannot be negative; SKU '{sku}' was given {price.amount} {price.currency}",
            sku=sku,
            currency=price.currency,
            amount=price.amount,
        )


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"

    def __init__(self, sku: str, quantity: object) -> None:
        super().__init__(
            f"a quantity is a whole number of at least 1; SKU '{sku}' was given {quantity!r}",
            sku=sku,
        )


class PriceMissing(Conflict):
    code = "price_missing"

    def __init__(self, sku: str, market: str) -> None:
        super().__init__(
            f"SKU '{sku}' has no price in market {market}, so it cannot be sold there",
            sku=sku,
            market=market,
        )


# --- markets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Market:
    """Where the shop sells: its currency, its language and how its prices carry tax."""

    code: str
    name: str
    currency: str
    locale: str
    tax_inclusive: bool
    tax_rate: Decimal


def market(
    code: str, name: str, currency: str, locale: str, tax_inclusive: bool, tax_rate: Decimal
) -> Market:
    """A valid market, or the first thing wrong with it. The locale is checked by the caller."""
    if not MARKET_CODE.fullmatch(code):
        raise InvalidMarketCode(code)
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidMarketName(name)
    return Market(
        code=code,
        name=name,
        currency=currency_code(currency),
        locale=locale,
        tax_inclusive=bool(tax_inclusive),
        tax_rate=tax_rate_of(tax_rate),
    )


def tax_rate_of(rate: Decimal | str) -> Decimal:
    """A tax rate in [0, 1) with few enough places to keep exactly."""
    value = _decimal(rate)
    if value is None or not (0 <= value < 1) or _places(value) > TAX_RATE_PLACES:
        raise InvalidTaxRate(rate)
    return value


def fx_rate_of(base: str, quote: str, rate: Decimal | str) -> Decimal:
    """A positive exchange rate between two different, known currencies."""
    currency_code(base)
    currency_code(quote)
    value = _decimal(rate)
    if value is None or value <= 0 or _places(value) > FX_RATE_PLACES or base == quote:
        raise InvalidFxRate(base, quote, rate)
    return value


def _decimal(value: Decimal | str) -> Decimal | None:
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# --- prices -------------------------------------------------------------------------------


def checked_prices(sku: str, prices: Iterable[Money]) -> list[Money]:
    """A SKU's price list: one price per currency, none negative, sorted by currency."""
    seen: dict[str, Money] = {}
    for price in prices:
        if price.currency in seen:
            raise DuplicateCurrency(sku, price.currency)
        if price.amount < 0:
            raise NegativePrice(sku, price)
        seen[price.currency] = price
    return [seen[c] for c in sorted(seen)]


def price_in(
    currency: str,
    prices: Mapping[str, Money],
    base_currency: str,
    fx_rate: Decimal | None,
) -> Money | None:
    """A SKU's price in a market's currency, from its prices keyed by currency.

    A price set in that currency wins; otherwise the base-currency price is converted at
    the base->market rate and rounded by the market currency's rules; otherwise none.
    """
    if currency in prices:
        return prices[currency]
    base = prices.get(base_currency)
    if base is None or fx_rate is None:
        return None
    return base.converted(fx_rate, currency)


# --- quotes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteLine:
    sku: str
    quantity: int
    unit_price: Money
    # What the line costs: unit price times quantity, less its discount.
    line_total: Money
    # In tax-inclusive markets the part of line_total that is tax; otherwise added on top.
    tax: Money
    # What promotions took off the line (zero without one).
    discount: Money


@dataclass(frozen=True, slots=True)
class Quote:
    market: str
    # The market's language, for whatever is shown with the quote (line titles).
    locale: str
    tax_inclusive: bool
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    tax: Money
    total: Money
    # The market's rate, so a discount can work the tax out again on what is left.
    tax_rate: Decimal
    discount: Money

    @property
    def currency(self) -> str:
        return self.total.currency


def tax_on(line_total: Money, tax_rate: Decimal, tax_inclusive: bool) -> Money:
    """The tax of one line, rounded half up to the currency's minor units."""
    if tax_inclusive:
        # The tax inside T is T - T/(1+r) = T*r/(1+r); enough precision that only the
        # final rounding to minor units matters.
        with localcontext() as exact:
            exact.prec = 60
            inside = Decimal(line_total.amount) * tax_rate / (1 + tax_rate)
            minor = int(inside.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        return Money(minor, line_total.currency)
    return line_total.scaled(tax_rate)


def quote(
    market: Market, lines: Sequence[tuple[str, int]], unit_prices: Mapping[str, Money]
) -> Quote:
    """Price each line in the market; PriceMissing for the first SKU without a price."""
    quoted: list[QuoteLine] = []
    for sku, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidQuantity(sku, quantity)
        unit = unit_prices.get(sku)
        if unit is None:
            raise PriceMissing(sku, market.code)
        line_total = unit.times(quantity)
        tax = tax_on(line_total, market.tax_rate, market.tax_inclusive)
        quoted.append(QuoteLine(sku, quantity, unit, line_total, tax, Money.zero(unit.currency)))
    return _summed(
        market.code, market.locale, market.tax_inclusive, market.tax_rate, quoted, market.currency
    )


def discounted(quote: Quote, discounts: Mapping[str, int]) -> Quote:
    """The quote with these minor units taken off the lines of these SKUs, each line's tax
    worked out again on what is left of it, as the market taxes it."""
    lines: list[QuoteLine] = []
    for line in quote.lines:
        off = discounts.get(line.sku, 0)
        if off == 0:
            lines.append(line)
            continue
        full = line.unit_price.times(line.quantity)
        if not 0 < off <= full.amount:
            raise ValueError(f"cannot take {off} off line {line.sku} of {full.amount}")
        left = Money(full.amount - off, full.currency)
        tax = tax_on(left, quote.tax_rate, quote.tax_inclusive)
        lines.append(
            QuoteLine(
                line.sku, line.quantity, line.unit_price, left, tax, Money(off, left.currency)
            )
        )
    return _summed(
        quote.market, quote.locale, quote.tax_inclusive, quote.tax_rate, lines, quote.currency
    )


def _summed(
    market: str,
    locale: str,
    tax_inclusive: bool,
    tax_rate: Decimal,
    lines: Sequence[QuoteLine],
    currency: str,
) -> Quote:
    subtotal = sum_money([q.line_total for q in lines], currency)
    tax = sum_money([q.tax for q in lines], currency)
    return Quote(
        market=market,
        locale=locale,
        tax_inclusive=tax_inclusive,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=subtotal if tax_inclusive else subtotal + tax,
        tax_rate=tax_rate,
        discount=sum_money([q.discount for q in lines], currency),
    )
