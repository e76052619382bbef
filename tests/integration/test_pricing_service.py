"""Pricing against real databases: markets, price lists, exchange rates and quotes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import UnknownCurrency
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.pricing.domain import (
    DuplicateCurrency,
    InvalidFxRate,
    InvalidQuantity,
    InvalidTaxRate,
    NegativePrice,
    UnknownLocale,
)
from colonnade.modules.pricing.schema import fx_rates
from colonnade.modules.pricing.service import (
    Market,
    PriceMissing,
    PricingService,
    UnknownMarket,
)
from tests.conftest import count_rows, statements_run

NOW = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def pricing(db: Database) -> PricingService:
    return PricingService(db, base_currency="USD", clock=SettableClock(NOW))


@pytest.fixture
async def shop(pricing: PricingService) -> PricingService:
    """US excludes sales tax, DE includes VAT, JP includes consumption tax; USD is the base."""
    await pricing.set_market("US", "United States", "USD", "en-US", False, Decimal("0.0725"))
    await pricing.set_market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    await pricing.set_market("JP", "日本", "JPY", "ja-JP", True, Decimal("0.10"))
    await pricing.set_fx_rate("USD", "EUR", Decimal("0.92"))
    await pricing.set_fx_rate("USD", "JPY", Decimal("151.37"))
    return pricing


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.reading() as conn:
        rows = await conn.execute(
            select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.id)
        )
        return [(r.event_type, r.payload) for r in rows]


# --- markets ------------------------------------------------------------------------------


async def test_a_market_is_opened_and_announced(db: Database, pricing: PricingService) -> None:
    de = await pricing.set_market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    assert de == Market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    assert await pricing.market("DE") == de
    assert await events(db) == [("pricing.MarketChanged", {"code": "DE"})]


async def test_a_market_can_be_changed_and_markets_are_listed_by_code(
    shop: PricingService,
) -> None:
    await shop.set_market("US", "USA", "USD", "en-US", False, Decimal("0.08"))
    assert [(m.code, m.name, m.tax_rate) for m in await shop.markets()] == [
        ("DE", "Deutschland", Decimal("0.19")),
        ("JP", "日本", Decimal("0.10")),
        ("US", "USA", Decimal("0.08")),
    ]


async def test_a_locale_is_kept_in_its_canonical_form(pricing: PricingService) -> None:
    market = await pricing.set_market("AT", "Österreich", "EUR", "DE-at", True, Decimal("0.2"))
    assert market.locale == "de-AT"


async def test_an_unknown_market_names_the_known_ones(shop: PricingService) -> None:
    with pytest.raises(UnknownMarket) as raised:
        await shop.market("FR")
    assert raised.value.status == 422
    assert (
        raised.value.detail == "there is no market with the code 'FR' (known markets: DE, JP, US)"
    )


@pytest.mark.parametrize(
    ("currency", "locale", "rate", "error"),
    [
        ("ZZZ", "en-US", "0.1", UnknownCurrency),
        ("USD", "xx-YY", "0.1", UnknownLocale),
        ("USD", "en-US", "1.5", InvalidTaxRate),
        ("USD", "en-US", "-0.1", InvalidTaxRate),
    ],
)
async def test_a_bad_market_is_refused_and_nothing_is_written(
    db: Database, pricing: PricingService, currency: str, locale: str, rate: str, error: type
) -> None:
    with pytest.raises(error):
        await pricing.set_market("US", "United States", currency, locale, False, Decimal(rate))
    assert await count_rows(db, "pricing_markets") == 0
    assert await events(db) == []


# --- prices -------------------------------------------------------------------------------


async def test_prices_are_set_per_currency_and_announced(
    db: Database, pricing: PricingService
) -> None:
    await pricing.set_prices("MUG", [Money(1250, "USD"), Money(1190, "EUR")])
    assert await pricing.prices("MUG") == [Money(1190, "EUR"), Money(1250, "USD")]
    assert await events(db) == [
        (
            "pricing.PriceChanged",
            {
                "sku": "MUG",
                "prices": [
                    {"amount": 1190, "currency": "EUR"},
                    {"amount": 1250, "currency": "USD"},
                ],
            },
        )
    ]


async def test_setting_prices_again_replaces_the_list(pricing: PricingService) -> None:
    await pricing.set_prices("MUG", [Money(1250, "USD"), Money(1190, "EUR")])
    await pricing.set_prices("MUG", [Money(1300, "USD"), Money(150_000, "JPY")])
    assert await pricing.prices("MUG") == [Money(150_000, "JPY"), Money(1300, "USD")]
    await pricing.set_prices("MUG", [])
    assert await pricing.prices("MUG") == []


async def test_bad_price_lists_change_nothing(db: Database, pricing: PricingService) -> None:
    await pricing.set_prices("MUG", [Money(1250, "USD")])
    with pytest.raises(DuplicateCurrency):
        await pricing.set_prices("MUG", [Money(1, "EUR"), Money(2, "EUR")])
    with pytest.raises(NegativePrice):
        await pricing.set_prices("MUG", [Money(-5, "USD")])
    assert await pricing.prices("MUG") == [Money(1250, "USD")]
    assert len(await events(db)) == 1


async def test_an_exchange_rate_is_kept_exactly_with_its_time(
    db: Database, pricing: PricingService
) -> None:
    await pricing.set_fx_rate("USD", "EUR", Decimal("0.92"))
    await pricing.set_fx_rate("USD", "EUR", Decimal("0.9312345678"))
    async with db.reading() as conn:
        rows = (await conn.execute(select(fx_rates))).all()
    assert [(r.base_currency, r.quote_currency, r.rate, r.updated_at) for r in rows] == [
        ("USD", "EUR", "0.9312345678", NOW)
    ]
    with pytest.raises(InvalidFxRate):
        await pricing.set_fx_rate("USD", "JPY", Decimal("0"))
    assert await count_rows(db, "pricing_fx_rates") == 1


# --- prices in a market -------------------------------------------------------------------


async def test_prices_in_a_market_prefer_their_own_then_convert_the_base_price(
    shop: PricingService,
) -> None:
    await shop.set_prices("MUG", [Money(1250, "USD"), Money(1190, "EUR")])
    await shop.set_prices("TEE", [Money(1999, "USD")])
    await shop.set_prices("POSTER-EU", [Money(900, "EUR")])

    skus = ["MUG", "TEE", "POSTER-EU", "NEVER-PRICED"]
    assert await shop.prices_for(skus, "DE") == {
        "MUG": Money(1190, "EUR"),
        "TEE": Money(1839, "EUR"),  # 19.99 x 0.92 = 18.3908
        "POSTER-EU": Money(900, "EUR"),
    }
    assert await shop.prices_for(skus, "JP") == {
        "MUG": Money(1892, "JPY"),  # 12.50 x 151.37 = 1892.125 yen
        "TEE": Money(3026, "JPY"),  # 19.99 x 151.37 = 3025.8863 yen
    }
    assert await shop.prices_for(skus, "US") == {
        "MUG": Money(1250, "USD"),
        "TEE": Money(1999, "USD"),
    }


async def test_a_market_without_an_exchange_rate_only_has_its_own_prices(
    shop: PricingService,
) -> None:
    await shop.set_market("GB", "United Kingdom", "GBP", "en-GB", True, Decimal("0.2"))
    await shop.set_prices("MUG", [Money(1250, "USD"), Money(1000, "GBP")])
    await shop.set_prices("TEE", [Money(1999, "USD")])
    assert await shop.prices_for(["MUG", "TEE"], "GB") == {"MUG": Money(1000, "GBP")}


async def test_prices_for_a_whole_page_take_two_queries(db: Database, shop: PricingService) -> None:
    skus = [f"SKU-{i}" for i in range(60)]
    for sku in skus:
        await shop.set_prices(sku, [Money(1000, "USD")])
    before = statements_run("select")
    found = await shop.prices_for(skus, "DE")
    assert len(found) == 60
    assert statements_run("select") - before <= 2


async def test_prices_for_an_unknown_market_are_refused(shop: PricingService) -> None:
    with pytest.raises(UnknownMarket):
        await shop.prices_for(["MUG"], "XX")


# --- quotes -------------------------------------------------------------------------------


async def test_a_us_quote_adds_sales_tax(shop: PricingService) -> None:
    await shop.set_prices("MUG", [Money(1250, "USD")])
    await shop.set_prices("TEE", [Money(2000, "USD")])
    quote = await shop.quote("US", [("MUG", 2), ("TEE", 1)])
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.line_total, ln.tax) for ln in quote.lines] == [
        ("MUG", 2, Money(1250, "USD"), Money(2500, "USD"), Money(181, "USD")),
        ("TEE", 1, Money(2000, "USD"), Money(2000, "USD"), Money(145, "USD")),
    ]
    assert (quote.subtotal, quote.tax, quote.total) == (
        Money(4500, "USD"),
        Money(326, "USD"),
        Money(4826, "USD"),
    )


async def test_a_japanese_quote_is_in_whole_yen_with_tax_inside(shop: PricingService) -> None:
    await shop.set_prices("TEE", [Money(1999, "USD")])
    quote = await shop.quote("JP", [("TEE", 3)])
    # 3026 yen each; 9078 yen including 10%: 9078 x 0.1/1.1 = 825.27 -> 825 yen tax.
    assert (quote.subtotal, quote.tax, quote.total) == (
        Money(9078, "JPY"),
        Money(825, "JPY"),
        Money(9078, "JPY"),
    )


async def test_a_quote_with_an_unpriced_sku_names_it(shop: PricingService) -> None:
    await shop.set_prices("MUG", [Money(1190, "EUR")])
    with pytest.raises(PriceMissing) as raised:
        await shop.quote("DE", [("MUG", 1), ("POSTER", 2)])
    assert raised.value.status == 409
    assert raised.value.code == "price_missing"
    assert "'POSTER'" in raised.value.detail


async def test_a_quote_needs_a_known_market_and_whole_quantities(shop: PricingService) -> None:
    await shop.set_prices("MUG", [Money(1250, "USD")])
    with pytest.raises(UnknownMarket):
        await shop.quote("FR", [("MUG", 1)])
    with pytest.raises(InvalidQuantity):
        await shop.quote("US", [("MUG", 0)])


async def test_a_kept_market_is_read_once_and_a_change_elsewhere_shows_after_its_time(
    db: Database,
) -> None:
    """Two processes on one database: the one that changes a market sees it at once, the
    other within its keeping time, and in between a quote costs one query, not two."""
    here = PricingService(db, base_currency="USD", reference_cache_seconds=0.3)
    there = PricingService(db, base_currency="USD", reference_cache_seconds=0.3)
    await here.set_market("US", "United States", "USD", "en-US", False, Decimal("0.05"))
    await here.set_prices("MUG", [Money(1000, "USD")])
    assert (await there.quote("US", [("MUG", 1)])).tax == Money(50, "USD")
    before = statements_run("select")
    await there.quote("US", [("MUG", 1)])
    assert statements_run("select") - before == 1
    await here.set_market("US", "United States", "USD", "en-US", False, Decimal("0.10"))
    assert (await here.quote("US", [("MUG", 1)])).tax == Money(100, "USD")
    assert (await there.quote("US", [("MUG", 1)])).tax == Money(50, "USD")
    await asyncio.sleep(0.4)
    assert (await there.quote("US", [("MUG", 1)])).tax == Money(100, "USD")
