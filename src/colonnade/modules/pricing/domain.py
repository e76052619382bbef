"""Pricing's rules: markets, which price a SKU has in a market, and taxes on a quote.

Pure: no I/O. Taxes are worked out per line and summed, so a quote's tax is always the sum
of its lines' taxes and its total the sum of its lines (plus tax where prices exclude it);
no rounding happens on the quote as a whole, so nothing can drift between lines and total.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from colonnade.kernel.errors import (
    Conflict,
    CurrencyMismatch,
    DuplicateCurrency,
    InvalidInput,
    NotFound,
)
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
    # The unit's price before a running sale lowered it; None when no sale does.
    compare_at: Money | None = None


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
    market: Market,
    lines: Sequence[tuple[str, int]],
    unit_prices: Mapping[str, Money],
    regular: Mapping[str, Money] | None = None,
) -> Quote:
    """Price each line in the market; PriceMissing for the first SKU without a price.
    `regular` holds the prices before a sale of the SKUs a running sale lowered."""
    quoted: list[QuoteLine] = []
    for sku, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidQuantity(sku, quantity)
        unit = unit_prices.get(sku)
        if unit is None:
            raise PriceMissing(sku, market.code)
        line_total = unit.times(quantity)
        tax = tax_on(line_total, market.tax_rate, market.tax_inclusive)
        quoted.append(
            QuoteLine(
                sku,
                quantity,
                unit,
                line_total,
                tax,
                Money.zero(unit.currency),
                (regular or {}).get(sku),
            )
        )
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


# --- scheduled sales ------------------------------------------------------------------------

MAX_SALE_SKUS = 10_000


class InvalidSale(InvalidInput):
    code = "invalid_sale"

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail, field=field)


class InvalidSaleWindow(InvalidInput):
    code = "invalid_sale_window"

    def __init__(self, starts_at: datetime, ends_at: datetime) -> None:
        super().__init__(
            f"a sale ends after it starts; it was to start at {starts_at.isoformat()} and end "
            f"at {ends_at.isoformat()}",
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
        )


class SaleOverlaps(Conflict):
    code = "sale_overlaps"

    def __init__(self, other: Sale, skus: Sequence[str]) -> None:
        shown = ", ".join(skus[:5]) + (f" and {len(skus) - 5} more" if len(skus) > 5 else "")
        super().__init__(
            f"the sale '{other.name}' ({other.id}) prices {shown} in market {other.market} "
            "at the same time; a SKU has one sale price at a time, so end that sale or choose "
            "another window",
            sale_id=other.id,
            skus=list(skus[:100]),
        )


class SaleNotFound(NotFound):
    code = "sale_not_found"

    def __init__(self, sale_id: str) -> None:
        super().__init__(f"there is no sale {sale_id}", sale_id=sale_id)


@dataclass(frozen=True, slots=True)
class Sale:
    """In one market, for a while, lower prices for some SKUs: a fixed sale price each, or
    (for a SKU without one) `percent_off` its price."""

    id: str
    name: str
    market: str
    percent_off: int | None
    starts_at: datetime
    ends_at: datetime | None
    prices: Mapping[str, Money | None]

    def running(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def overlaps(self, other: Sale) -> bool:
        """Whether the two sales run at some same moment."""
        return (other.ends_at is None or self.starts_at < other.ends_at) and (
            self.ends_at is None or other.starts_at < self.ends_at
        )

    def price_of(self, sku: str, regular: Money) -> Money | None:
        """The SKU's sale price, when the sale lowers it below `regular`; else None."""
        if sku not in self.prices:
            return None
        fixed = self.prices[sku]
        if fixed is not None and fixed.currency != regular.currency:
            return None  # the market's currency changed since the sale was made
        if fixed is None:
            if self.percent_off is None:
                return None
            fixed = regular.scaled(Decimal(100 - self.percent_off) / 100)
        return fixed if fixed.amount < regular.amount else None


def sale(
    *,
    id: str,
    name: str,
    market: Market,
    percent_off: int | None,
    starts_at: datetime,
    ends_at: datetime | None,
    prices: Sequence[tuple[str, Money | None]],
) -> Sale:
    """A valid sale, or the first thing wrong with it."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidSale(f"a sale needs a name of 1 to {MAX_NAME} characters", field="name")
    if percent_off is not None and (
        isinstance(percent_off, bool)
        or not isinstance(percent_off, int)
        or not 1 <= percent_off <= 99
    ):
        raise InvalidSale(
            f"percent_off is a whole number from 1 to 99; got {percent_off!r}", field="percent_off"
        )
    if not prices or len(prices) > MAX_SALE_SKUS:
        raise InvalidSale(f"a sale lists 1 to {MAX_SALE_SKUS} SKUs", field="prices")
    seen: dict[str, Money | None] = {}
    for sku, price in prices:
        if sku in seen:
            raise InvalidSale(f"SKU '{sku}' is listed twice", field="prices")
        if price is None and percent_off is None:
            raise InvalidSale(
                f"SKU '{sku}' has no sale price and the sale no percent_off to work one out",
                field="prices",
            )
        if price is not None:
            if price.currency != market.currency:
                raise CurrencyMismatch(market.currency, price.currency)
            if price.amount < 0:
                raise NegativePrice(sku, price)
        seen[sku] = price
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidSaleWindow(starts_at, ends_at)
    return Sale(
        id=id,
        name=name,
        market=market.code,
        percent_off=percent_off,
        starts_at=starts_at,
        ends_at=ends_at,
        prices=seen,
    )


def clashing(new: Sale, others: Iterable[Sale]) -> None:
    """SaleOverlaps when another sale of the market prices one of the new one's SKUs at a
    moment the new one runs too: a SKU has one sale price at a time."""
    for other in others:
        if other.market == new.market and other.overlaps(new):
            shared = sorted(set(other.prices) & set(new.prices))
            if shared:
                raise SaleOverlaps(other, shared)


@dataclass(frozen=True, slots=True)
class ShelfPrice:
    """What a SKU sells for now, and its price before the sale that lowered it, if any."""

    price: Money
    compare_at: Money | None


def on_sale(
    prices: Mapping[str, Money], sales: Sequence[Sale], now: datetime
) -> dict[str, ShelfPrice]:
    """Each priced SKU's shelf price now: its sale price where a running sale lowers it."""
    running = [s for s in sales if s.running(now)]
    shelf: dict[str, ShelfPrice] = {}
    for sku, regular in prices.items():
        lowered = next((p for s in running if (p := s.price_of(sku, regular)) is not None), None)
        shelf[sku] = ShelfPrice(regular, None) if lowered is None else ShelfPrice(lowered, regular)
    return shelf


def next_change(sales: Iterable[Sale], now: datetime) -> datetime | None:
    """When the first of these sales starts or ends after `now`: shelf prices hold until then."""
    moments = [
        moment
        for s in sales
        for moment in (s.starts_at, s.ends_at)
        if moment is not None and moment > now
    ]
    return min(moments, default=None)
