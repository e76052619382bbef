"""Pricing's routes: markets for the storefront, prices and exchange rates for staff.

Thin: parse, authorize, call one service method. Rates travel as decimal strings ("0.19")
so no float ever carries them; amounts as whole minor units.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from colonnade.kernel.errors import DuplicateCurrency, UnknownCurrency
from colonnade.kernel.money import Money, currency_code
from colonnade.modules.pricing.domain import (
    FX_RATE_PLACES,
    MAX_NAME,
    TAX_RATE_PLACES,
    InvalidFxRate,
    InvalidMarketCode,
    InvalidMarketName,
    InvalidTaxRate,
    NegativePrice,
    UnknownLocale,
    UnknownMarket,
)
from colonnade.modules.pricing.service import MAX_SKU, InvalidSku, Market, PricingService
from colonnade.web import caching
from colonnade.web.auth import requires
from colonnade.web.fields import (
    INTEGRAL,
    MAX_WHOLE_NUMBER,
    CurrencyCode,
    Locale,
    MarketCode,
    declared,
)
from colonnade.web.problems import refusals

READ = "pricing:read"
WRITE = "pricing:write"

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


class MarketOut(BaseModel):
    code: str
    name: str
    currency: str
    locale: str
    tax_inclusive: bool
    tax_rate: str

    @classmethod
    def of(cls, market: Market) -> MarketOut:
        return cls(
            code=market.code,
            name=market.name,
            currency=market.currency,
            locale=market.locale,
            tax_inclusive=market.tax_inclusive,
            tax_rate=str(market.tax_rate),
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
            InvalidMarketCode, InvalidMarketName, UnknownCurrency, UnknownLocale, InvalidTaxRate
        ),
    )
    async def set_market(code: MarketCode, body: MarketIn) -> MarketOut:
        """Open a market or change its name, currency, locale or tax."""
        market = await pricing.set_market(
            code, body.name, body.currency, body.locale, body.tax_inclusive, Decimal(body.tax_rate)
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

    return routes
