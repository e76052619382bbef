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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from colonnade.kernel.errors import (
    Conflict,
    CurrencyMismatch,
    DuplicateCurrency,
    InvalidInput,
    NotFound,
)
from colonnade.kernel.money import Money, currency_code, sum_money
from colonnade.kernel.placements import Placement
from colonnade.kernel.shapes import LOCALE_TAG

MARKET_CODE = re.compile(r"^[A-Z]{2,10}$")
# A BCP 47 tag's shape; Babel alone would also take 'en.UTF-8' or 'de@euro' for a locale.
LOCALE_SHAPE = re.compile(LOCALE_TAG)
MAX_NAME = 200
MAX_TIME_ZONE = 64
# Letters, digits and _+-/ only: no path tricks reach the time zone database.
TIME_ZONE_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
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


class UnknownTimeZone(InvalidInput):
    code = "unknown_time_zone"

    def __init__(self, time_zone: str) -> None:
        super().__init__(
            f"'{time_zone}' is not a known time zone; use an IANA name such as Europe/Berlin "
            "or America/New_York",
            time_zone=time_zone[:MAX_TIME_ZONE],
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
    # An IANA name: when the market's days start, for staff scheduling its sales.
    time_zone: str = "UTC"

    def local(self, moment: datetime) -> datetime:
        """The moment on the market's clock."""
        return moment.astimezone(ZoneInfo(self.time_zone))


def market(
    code: str,
    name: str,
    currency: str,
    locale: str,
    tax_inclusive: bool,
    tax_rate: Decimal,
    time_zone: str = "UTC",
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
        time_zone=time_zone_of(time_zone),
    )


def time_zone_of(name: str) -> str:
    """An IANA time zone name as the time zone database knows it, or UnknownTimeZone."""
    if not TIME_ZONE_SHAPE.fullmatch(name):
        raise UnknownTimeZone(name)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(name) from None
    return name


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
MAX_SALE_TARGETS = 1_000
# Product ids and category slugs are at most this long.
MAX_TARGET = 200


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

    def __init__(self, other: Sale, shared: Sequence[str], kind: str = "skus") -> None:
        shown = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        named = {"skus": "SKUs", "products": "products", "categories": "categories"}[kind]
        super().__init__(
            f"the sale '{other.name}' ({other.id}) prices the {named} {shown} in market "
            f"{other.market} at the same time; a sale names each of them once at a time, so "
            "end that sale or choose another window",
            sale_id=other.id,
            **{kind: list(shared[:100])},
        )


class SaleNotFound(NotFound):
    code = "sale_not_found"

    def __init__(self, sale_id: str) -> None:
        super().__init__(f"there is no sale {sale_id}", sale_id=sale_id)


@dataclass(frozen=True, slots=True)
class Sale:
    """In one market, for a while, lower prices: a fixed sale price for each SKU listed, or
    `percent_off` the price of a listed SKU without one, of every variant of `products`, and
    of every product of `categories` and of the categories below them."""

    id: str
    name: str
    market: str
    percent_off: int | None
    starts_at: datetime
    ends_at: datetime | None
    prices: Mapping[str, Money | None]
    products: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    @property
    def by_placement(self) -> bool:
        """Whether it needs to know each SKU's product and categories."""
        return bool(self.products or self.categories)

    def running(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def overlaps(self, other: Sale) -> bool:
        """Whether the two sales run at some same moment."""
        return (other.ends_at is None or self.starts_at < other.ends_at) and (
            self.ends_at is None or other.starts_at < self.ends_at
        )

    def reach(self, sku: str, placement: Placement | None) -> int | None:
        """How closely the sale names the SKU: 0 by its SKU, 1 by its product, 2 by one of
        its categories; None when it does not."""
        if sku in self.prices:
            return 0
        if placement is None:
            return None
        product, categories = placement
        if product in self.products:
            return 1
        if not categories.isdisjoint(self.categories):
            return 2
        return None

    def price_of(
        self, sku: str, regular: Money, placement: Placement | None = None
    ) -> Money | None:
        """The SKU's sale price, when the sale lowers it below `regular`; else None."""
        if sku in self.prices:
            fixed = self.prices[sku]
        elif self.reach(sku, placement) is not None:
            fixed = None
        else:
            return None
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
    products: Sequence[str] = (),
    categories: Sequence[str] = (),
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
    if len(prices) > MAX_SALE_SKUS:
        raise InvalidSale(f"a sale lists at most {MAX_SALE_SKUS} SKUs", field="prices")
    if not (prices or products or categories):
        raise InvalidSale(
            "a sale lists SKUs, or names products or categories, or both", field="prices"
        )
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
    named = {
        field: _names(field, values)
        for field, values in (("products", products), ("categories", categories))
    }
    if (named["products"] or named["categories"]) and percent_off is None:
        raise InvalidSale(
            "a sale of whole products or categories takes percent_off their prices",
            field="percent_off",
        )
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
        products=named["products"],
        categories=named["categories"],
    )


def _names(field: str, values: Sequence[str]) -> frozenset[str]:
    """Product ids or category slugs a sale names, each once."""
    if len(values) > MAX_SALE_TARGETS:
        raise InvalidSale(f"a sale names at most {MAX_SALE_TARGETS} {field}", field=field)
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TARGET:
            raise InvalidSale(
                f"each of {field} is 1 to {MAX_TARGET} characters; got {value!r}", field=field
            )
    found = frozenset(values)
    if len(found) < len(values):
        twice = next(v for v in values if list(values).count(v) > 1)
        raise InvalidSale(f"'{twice}' is named twice in {field}", field=field)
    return found


def clashing(new: Sale, others: Iterable[Sale]) -> None:
    """SaleOverlaps when another sale of the market names one of the new one's SKUs, products
    or categories at a moment the new one runs too: each has one sale at a time. (A product's
    sale and its category's may run together: the closer name sets the price, see
    `on_sale`.)"""
    for other in others:
        if other.market == new.market and other.overlaps(new):
            for kind, shared in (
                ("skus", set(other.prices) & set(new.prices)),
                ("products", other.products & new.products),
                ("categories", other.categories & new.categories),
            ):
                if shared:
                    raise SaleOverlaps(other, sorted(shared), kind)


@dataclass(frozen=True, slots=True)
class ShelfPrice:
    """What a SKU sells for now, and its price before the sale that lowered it, if any."""

    price: Money
    compare_at: Money | None


def on_sale(
    prices: Mapping[str, Money],
    sales: Sequence[Sale],
    now: datetime,
    placements: Mapping[str, Placement] | None = None,
) -> dict[str, ShelfPrice]:
    """Each priced SKU's shelf price now: its sale price where a running sale lowers it. When
    several running sales lower it, the one that names the SKU most closely sets its price
    (its SKU, then its product, then a category); between those naming it as closely, the
    lowest price (which cannot depend on the order the sales come in)."""
    running = [s for s in sales if s.running(now)]
    shelf: dict[str, ShelfPrice] = {}
    for sku, regular in prices.items():
        placement = placements.get(sku) if placements else None
        best: tuple[int, int, Money] | None = None
        for s in running:
            reach = s.reach(sku, placement)
            if reach is None:
                continue
            lowered = s.price_of(sku, regular, placement)
            if lowered is not None and (best is None or (reach, lowered.amount) < best[:2]):
                best = (reach, lowered.amount, lowered)
        shelf[sku] = ShelfPrice(regular, None) if best is None else ShelfPrice(best[2], regular)
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
