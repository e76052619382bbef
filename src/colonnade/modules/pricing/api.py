"""Pricing's routes: markets for the storefront, prices and exchange rates for staff.

Thin: parse, authorize, call one service method. Rates travel as decimal strings ("0.19")
so no float ever carries them; amounts as whole minor units.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from colonnade.kernel.errors import CurrencyMismatch, DuplicateCurrency, UnknownCurrency
from colonnade.kernel.money import Money, currency_code
from colonnade.modules.pricing.domain import (
    FX_RATE_PLACES,
    MAX_NAME,
    MAX_TARGET,
    MAX_TIME_ZONE,
    TAX_RATE_PLACES,
    InvalidFxRate,
    InvalidMarketCode,
    InvalidMarketName,
    InvalidTaxRate,
    NegativePrice,
    UnknownLocale,
    UnknownMarket,
    UnknownTimeZone,
)
from colonnade.modules.pricing.service import (
    MAX_SKU,
    InvalidSale,
    InvalidSaleWindow,
    InvalidSku,
    Market,
    NewSale,
    PricingService,
    Sale,
    SaleNotFound,
    SaleOverlaps,
)
from colonnade.web import caching
from colonnade.web.auth import requires
from colonnade.web.fields import (
    INTEGRAL,
    MAX_WHOLE_NUMBER,
    CurrencyCode,
    Instant,
    Locale,
    MarketCode,
    MarketRef,
    declared,
)
from colonnade.web.problems import refusals

READ = "pricing:read"
WRITE = "pricing:write"
# Sales are promotions: the staff who run them run the discount codes too.
SALES_READ = "promotions:read"
SALES_WRITE = "promotions:write"

# A plain decimal: digits, an optional fraction; no exponent, sign or spaces. Pydantic holds
# rates to this shape; the narrower patterns the schema states are the domain's rules.
DECIMAL = r"^[0-9]{1,12}(\.[0-9]{1,12})?$"
# A tax rate: from 0 up to (not including) 1, its places past the last non-zero digit only zeros.
TAX_RATE = rf"^0{{1,12}}(\.[0-9]{{1,{TAX_RATE_PLACES}}}0{{0,{12 - TAX_RATE_PLACES}}})?$"
# An exchange rate: positive (not only zeros and a point), with few enough places.
FX_RATE = rf"^[0-9]{{1,12}}(\.[0-9]{{1,{FX_RATE_PLACES}}}0{{0,{12 - FX_RATE_PLACES}}})?$"
_NOT_ZERO = {"not": {"pattern": r"^[0.]*$"}}

PricedSku = Annotated[StrictStr, declared(minLength=1, maxLength=MAX_SKU)]
"""The SKU a price list belongs to; it need not be in the catalog yet."""
SaleTarget = Annotated[StrictStr, declared(minLength=1, maxLength=MAX_TARGET)]
"""A product id or category slug a sale names; like a SKU, it need not be in the catalog yet."""


class MoneyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The domain refuses a negative price itself; the upper bound is pydantic's.
    amount: Annotated[StrictInt, declared(minimum=0), Field(le=MAX_WHOLE_NUMBER), INTEGRAL] = Field(
        description="Whole minor units (cents for USD, yen for JPY)."
    )
    currency: CurrencyCode = Field(description="ISO 4217 code, such as USD.")

    def money(self) -> Money:
        # The kernel knows which codes exist: an unknown one is a 422 unknown_currency.
        return Money(self.amount, currency_code(self.currency))

    @classmethod
    def of(cls, money: Money) -> MoneyModel:
        return cls(amount=money.amount, currency=money.currency)


class MarketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, declared(minLength=1, maxLength=MAX_NAME, pattern=r"\S")]
    currency: CurrencyCode = Field(description="ISO 4217 code, such as EUR.")
    locale: Locale = Field(description="The market's language, such as de-DE.")
    tax_inclusive: StrictBool = Field(description="Whether shelf prices include the tax.")
    tax_rate: Annotated[StrictStr, declared(pattern=TAX_RATE)] = Field(
        pattern=DECIMAL, description='A decimal fraction as a string: "0.19" for 19%.'
    )
    time_zone: Annotated[StrictStr, declared(minLength=1, maxLength=MAX_TIME_ZONE)] | None = Field(
        default=None,
        description="An IANA time zone such as Europe/Berlin, in which staff see the "
        "market's sales; none: the market keeps its own (UTC when new).",
    )


class MarketOut(BaseModel):
    code: str
    name: str
    currency: str
    locale: str
    tax_inclusive: bool
    tax_rate: str
    time_zone: str

    @classmethod
    def of(cls, market: Market) -> MarketOut:
        return cls(
            code=market.code,
            name=market.name,
            currency=market.currency,
            locale=market.locale,
            tax_inclusive=market.tax_inclusive,
            tax_rate=str(market.tax_rate),
            time_zone=market.time_zone,
        )


class PricesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices: list[MoneyModel] = Field(max_length=200, description="At most one per currency.")


class PricesOut(BaseModel):
    sku: str
    prices: list[MoneyModel]


class FxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: Annotated[StrictStr, declared(pattern=FX_RATE, **_NOT_ZERO)] = Field(
        pattern=DECIMAL, description='Units of the quote currency per base unit, e.g. "0.92".'
    )


class FxRateOut(BaseModel):
    base: str
    quote: str
    rate: str


class SalePriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: PricedSku
    price: MoneyModel | None = Field(
        default=None,
        description="Its sale price in the market's currency; none: the sale's percent_off.",
    )


class SaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, declared(minLength=1, maxLength=MAX_NAME, pattern=r"\S")]
    market: MarketCode = Field(description="Where the sale prices apply.")
    percent_off: Annotated[StrictInt, declared(minimum=1, maximum=99), INTEGRAL] | None = Field(
        default=None, description="Off the price of each listed SKU without a sale price."
    )
    # As many as a request body holds; a larger sale is several sales with one window.
    prices: list[SalePriceIn] = Field(
        default=[], max_length=100, description="The SKUs on sale, each once (at most 100)."
    )
    products: list[SaleTarget] = Field(
        default=[],
        max_length=100,
        description="Product ids: every variant of each sells at percent_off.",
    )
    categories: list[SaleTarget] = Field(
        default=[],
        max_length=100,
        description="Category slugs: every product of each, and of the categories below it, "
        "sells at percent_off. A SKU's own sale price comes first, then its product's sale, "
        "then its category's; between sales naming a SKU as closely, the lower price.",
    )
    starts_at: Instant | None = Field(
        default=None, description="RFC 3339; when it starts by itself (none: now)."
    )
    ends_at: Instant | None = Field(
        default=None, description="RFC 3339; when it ends by itself (none: never)."
    )


class SalePriceOut(BaseModel):
    sku: str
    price: MoneyModel | None


class SaleOut(BaseModel):
    id: str
    name: str
    market: str
    percent_off: int | None
    starts_at: datetime
    ends_at: datetime | None
    time_zone: str = Field(description="The market's time zone, in which the local times are.")
    starts_at_local: datetime = Field(description="starts_at on the market's clock.")
    ends_at_local: datetime | None = Field(description="ends_at on the market's clock.")
    prices: list[SalePriceOut]
    products: list[str]
    categories: list[str]

    @classmethod
    def of(cls, sale: Sale, market: Market) -> SaleOut:
        return cls(
            id=sale.id,
            name=sale.name,
            market=sale.market,
            percent_off=sale.percent_off,
            starts_at=sale.starts_at,
            ends_at=sale.ends_at,
            time_zone=market.time_zone,
            starts_at_local=market.local(sale.starts_at),
            ends_at_local=None if sale.ends_at is None else market.local(sale.ends_at),
            prices=[
                SalePriceOut(sku=sku, price=None if p is None else MoneyModel.of(p))
                for sku, p in sale.prices.items()
            ],
            products=sorted(sale.products),
            categories=sorted(sale.categories),
        )


def router(pricing: PricingService) -> APIRouter:
    routes = APIRouter(tags=["pricing"])

    @routes.get("/store/markets", response_model=list[MarketOut])
    async def list_markets(request: Request) -> Response:
        """The markets the shop sells in, by code."""
        found = await pricing.markets()
        body = orjson.dumps([MarketOut.of(m).model_dump() for m in found])
        keys = " ".join(["markets", *(f"market-{m.code}" for m in found)])
        return caching.public(request, body, caching.etag_of(body), keys)

    @routes.get(
        "/store/markets/{code}", response_model=MarketOut, responses=refusals(UnknownMarket)
    )
    async def show_market(request: Request, code: MarketCode) -> Response:
        """One market; a 422 unknown_market problem listing the known codes when there is none."""
        body = orjson.dumps(MarketOut.of(await pricing.market(code)).model_dump())
        return caching.public(request, body, caching.etag_of(body), f"market-{code}")

    @routes.put(
        "/admin/markets/{code}",
        dependencies=[Depends(requires(WRITE))],
        response_model=MarketOut,
        responses=refusals(
            InvalidMarketCode,
            InvalidMarketName,
            UnknownCurrency,
            UnknownLocale,
            InvalidTaxRate,
            UnknownTimeZone,
        ),
    )
    async def set_market(code: MarketCode, body: MarketIn) -> MarketOut:
        """Open a market or change its name, currency, locale, tax or time zone."""
        market = await pricing.set_market(
            code,
            body.name,
            body.currency,
            body.locale,
            body.tax_inclusive,
            Decimal(body.tax_rate),
            body.time_zone,
        )
        return MarketOut.of(market)

    @routes.put(
        "/admin/prices/{sku}",
        dependencies=[Depends(requires(WRITE))],
        response_model=PricesOut,
        responses=refusals(InvalidSku, UnknownCurrency, NegativePrice, DuplicateCurrency),
    )
    async def set_prices(sku: PricedSku, body: PricesIn) -> PricesOut:
        """Replace a SKU's prices: one per currency; currencies left out lose their price."""
        prices = [p.money() for p in body.prices]
        await pricing.set_prices(sku, prices)
        # Accepted means stored as given: one per currency, listed by currency like GET does.
        stored = sorted(prices, key=lambda p: p.currency)
        return PricesOut(sku=sku, prices=[MoneyModel.of(p) for p in stored])

    @routes.get(
        "/admin/prices/{sku}",
        dependencies=[Depends(requires(READ))],
        response_model=PricesOut,
    )
    async def show_prices(sku: str) -> PricesOut:
        """A SKU's prices as set, by currency (empty when it has none)."""
        return PricesOut(sku=sku, prices=[MoneyModel.of(p) for p in await pricing.prices(sku)])

    @routes.put(
        "/admin/fx-rates/{base}/{quote}",
        dependencies=[Depends(requires(WRITE))],
        response_model=FxRateOut,
        responses=refusals(UnknownCurrency, InvalidFxRate),
    )
    async def set_fx_rate(base: CurrencyCode, quote: CurrencyCode, body: FxRateIn) -> FxRateOut:
        """Set how many units of `quote` one unit of `base` buys."""
        await pricing.set_fx_rate(base, quote, Decimal(body.rate))
        return FxRateOut(base=base, quote=quote, rate=str(Decimal(body.rate)))

    @routes.post(
        "/admin/sales",
        status_code=status.HTTP_201_CREATED,
        dependencies=[Depends(requires(SALES_WRITE))],
        response_model=SaleOut,
        responses=refusals(
            UnknownMarket,
            InvalidSale,
            InvalidSaleWindow,
            SaleOverlaps,
            NegativePrice,
            CurrencyMismatch,
            UnknownCurrency,
        ),
    )
    async def create_sale(body: SaleIn) -> SaleOut:
        """Schedule a sale: in one market, from `starts_at` to `ends_at`, the SKUs listed sell
        at their sale price (or `percent_off` their price), and so do the products and
        categories named, at `percent_off`: shown beside the price before."""
        made = await pricing.create_sale(
            NewSale(
                name=body.name,
                market=body.market,
                percent_off=body.percent_off,
                prices=tuple(
                    (p.sku, None if p.price is None else p.price.money()) for p in body.prices
                ),
                products=tuple(body.products),
                categories=tuple(body.categories),
                starts_at=body.starts_at,
                ends_at=body.ends_at,
            )
        )
        return SaleOut.of(made, await pricing.market(made.market))

    @routes.get(
        "/admin/sales",
        dependencies=[Depends(requires(SALES_READ))],
        response_model=list[SaleOut],
    )
    async def list_sales(market: MarketRef | None = None) -> list[SaleOut]:
        """Every sale (of one market), the latest to start first."""
        where = {m.code: m for m in await pricing.markets()}
        return [SaleOut.of(s, where[s.market]) for s in await pricing.sales(market)]

    @routes.get(
        "/admin/sales/{sale_id}",
        dependencies=[Depends(requires(SALES_READ))],
        response_model=SaleOut,
        responses=refusals(SaleNotFound),
    )
    async def show_sale(sale_id: str) -> SaleOut:
        """One sale with its SKUs, products, categories and sale prices."""
        found = await pricing.sale(sale_id)
        return SaleOut.of(found, await pricing.market(found.market))

    @routes.post(
        "/admin/sales/{sale_id}/end",
        dependencies=[Depends(requires(SALES_WRITE))],
        response_model=SaleOut,
        responses=refusals(SaleNotFound),
    )
    async def end_sale(sale_id: str) -> SaleOut:
        """End a sale now: its SKUs go back to their prices at once."""
        ended = await pricing.end_sale(sale_id)
        return SaleOut.of(ended, await pricing.market(ended.market))

    return routes
