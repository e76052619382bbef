"""Stand-ins for the cart's collaborators (pricing and the catalog), backed by dicts.

They follow the cart's ports: markets with a currency and tax mode, quotes with per-line
prices and taxes, a 422 for an unknown market and a 409 `price_missing` for an unpriced SKU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput
from colonnade.kernel.money import Money, sum_money


class UnknownMarket(InvalidInput):
    code = "unknown_market"


class PriceMissing(Conflict):
    code = "price_missing"


@dataclass(frozen=True)
class Market:
    code: str
    currency: str
    locale: str
    tax_inclusive: bool
    tax_rate: Decimal


@dataclass(frozen=True)
class QuoteLine:
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money
    tax: Money
    compare_at: Money | None = None


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    tax: Money
    total: Money


MARKETS = {
    # US prices exclude sales tax; German prices include VAT.
    "US": Market("US", "USD", "en-US", tax_inclusive=False, tax_rate=Decimal("0.10")),
    "DE": Market("DE", "EUR", "de-DE", tax_inclusive=True, tax_rate=Decimal("0.19")),
}


@dataclass
class Pricing:
    """Unit prices in minor units per (market, SKU); counts quote calls for the round-trip tests."""

    prices: dict[tuple[str, str], int] = field(default_factory=dict)
    quotes: int = 0

    async def market(self, code: str) -> Market:
        if code not in MARKETS:
            raise UnknownMarket(f"no market has the code '{code}'", market=code)
        return MARKETS[code]

    async def quote(self, market_code: str, lines: list[tuple[str, int]]) -> Quote:
        self.quotes += 1
        market = await self.market(market_code)
        quoted = []
        for sku, quantity in lines:
            if (market_code, sku) not in self.prices:
                raise PriceMissing(f"SKU '{sku}' has no price in market {market_code}", sku=sku)
            unit = Money(self.prices[(market_code, sku)], market.currency)
            total = unit.times(quantity)
            if market.tax_inclusive:
                tax = total - total.scaled(1 / (1 + market.tax_rate))
            else:
                tax = total.scaled(market.tax_rate)
            quoted.append(QuoteLine(sku, quantity, unit, total, tax))
        subtotal = sum_money([q.line_total for q in quoted], market.currency)
        tax = sum_money([q.tax for q in quoted], market.currency)
        return Quote(
            lines=tuple(quoted),
            subtotal=subtotal,
            tax=tax,
            total=subtotal if market.tax_inclusive else subtotal + tax,
        )

    async def quote_batch(
        self, conn: object, wanted: Sequence[tuple[str, list[tuple[str, int]]]]
    ) -> list[Quote | ColonnadeError]:
        answers: list[Quote | ColonnadeError] = []
        for market_code, lines in wanted:
            try:
                answers.append(await self.quote(market_code, lines))
            except ColonnadeError as refused:
                answers.append(refused)
        return answers


@dataclass
class Catalog:
    skus: set[str] = field(default_factory=set)

    async def sku_exists(self, sku: str) -> bool:
        return sku in self.skus


def shop_collaborators() -> tuple[Pricing, Catalog]:
    """A mug priced in both markets, a tee priced only in the US, a poster priced nowhere."""
    pricing = Pricing(
        prices={("US", "MUG-RED"): 1250, ("DE", "MUG-RED"): 1190, ("US", "TEE-L"): 2000}
    )
    catalog = Catalog(skus={"MUG-RED", "TEE-L", "POSTER"})
    return pricing, catalog
