"""The store's catalog pages (listings, searches, product pages), encoded once and kept.

A page is read and encoded on its first request and kept, as the JSON bytes the shopper gets
with their ETag, until an event says it changed (a product's texts or status, a category, a
price, a market, an exchange rate or a sale), or until one of its market's scheduled sales
starts or ends, which needs no event: the page knows the moment. The stock labels on a page
(in stock, low, sold out) come from the stock book and are checked again every
`stock_seconds`; a page whose labels no longer hold is dropped and read afresh by the next
request.

Many shoppers asking for the same missing page at once cause one read, not one each; a page
read while a change arrived is answered but not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog

from colonnade.kernel.cache import SharedReads
from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.money import Money
from colonnade.kernel.periodic import Every
from colonnade.modules.catalog.domain import StockLabel, stock_label
from colonnade.modules.catalog.events import CategoryChanged, ProductChanged, ProductPublished
from colonnade.modules.catalog.service import CatalogService, LocalizedProduct
from colonnade.modules.pricing.events import (
    FxRateChanged,
    MarketChanged,
    PriceChanged,
    SaleChanged,
)
from colonnade.modules.pricing.service import ShelfPrice
from colonnade.web.caching import etag_of

log = structlog.get_logger(__name__)

# Stock is asked for this many SKUs at a time, well under every database's parameter limit.
STOCK_CHUNK = 500


class MarketLike(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def locale(self) -> str: ...


class StorePrices(Protocol):
    async def market(self, code: str) -> MarketLike:
        """The market; a 422 problem (unknown_market) when there is none."""
        ...

    async def shelf_prices(
        self, skus: list[str], market_code: str
    ) -> tuple[dict[str, ShelfPrice], datetime | None]:
        """Each priced SKU's price in the market's currency now, with its price before a
        running sale; and when the market's sales next start or end."""
        ...


# Units available per SKU (0 for a SKU never stocked).
StockBook = Callable[[list[str]], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Page:
    """One answer as it goes out: its bytes, their ETag, and what it shows."""

    body: bytes
    etag: str
    surrogate_key: str
    market: str
    products: frozenset[str]
    stock: dict[str, StockLabel]
    listing: bool
    by_category: bool
    # When a sale of its market starts or ends, and its prices with it; None: no sale will.
    until: datetime | None = None


class StorePages:
    def __init__(
        self,
        catalog: CatalogService,
        pricing: StorePrices,
        stock: StockBook,
        *,
        size: int = 5000,
        stock_seconds: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._catalog = catalog
        self._pricing = pricing
        self._stock = stock
        self._size = size
        self._stock_seconds = stock_seconds
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._reading: SharedReads[Hashable, Page] = SharedReads()
        # Bumped by every change: a page read across a change is not kept.
        self._generation = 0
        self._loop = Every(
            "colonnade-store-stock",
            self._stock_seconds,
            self.check_stock,
            "store_pages.stock_check_failed",
        )

    # --- reading ----------------------------------------------------------------------------

    async def listing(
        self,
        market: str,
        locale: str | None,
        q: str | None,
        category: str | None,
        limit: int,
        offset: int,
    ) -> Page:
        async def read() -> Page:
            where = await self._pricing.market(market)
            # An empty locale is asked for, not left out: it is refused as no locale at all.
            found = await self._catalog.products(
                where.locale if locale is None else locale,
                q=q,
                category=category,
                limit=limit,
                offset=offset,
            )
            return await self._page(found, where, listing=True, by_category=category is not None)

        return await self._kept(("list", market, locale, q, category, limit, offset), read)

    async def product(self, product_id: str, market: str, locale: str | None) -> Page:
        async def read() -> Page:
            where = await self._pricing.market(market)
            found = await self._catalog.product(
                product_id, where.locale if locale is None else locale, published_only=True
            )
            return await self._page([found], where, listing=False, by_category=False)

        return await self._kept(("product", product_id, market, locale), read)

    async def _kept(self, key: Hashable, read: Callable[[], Awaitable[Page]]) -> Page:
        page = self._pages.get(key)
        if page is not None and (page.until is None or self._clock.now() < page.until):
            return page

        async def read_and_keep() -> Page:
            generation = self._generation
            page = await read()
            if generation == self._generation:
                self._keep(key, page)
            return page

        # Shoppers asking for the same page while it is read wait for that one read.
        return await self._reading.read(key, read_and_keep)

    def _keep(self, key: Hashable, page: Page) -> None:
        self._pages[key] = page
        if len(self._pages) > self._size:
            self._pages.popitem(last=False)

    async def _page(
        self,
        products: list[LocalizedProduct],
        where: MarketLike,
        *,
        listing: bool,
        by_category: bool,
    ) -> Page:
        skus = [v.sku for p in products for v in p.variants]
        prices, until = await self._pricing.shelf_prices(skus, where.code) if skus else ({}, None)
        available = await self._stock(skus) if skus else {}
        labels = {sku: stock_label(available.get(sku, 0)) for sku in skus}
        shown = [_product_json(p, prices, labels) for p in products]
        body = orjson.dumps(shown if listing else shown[0])
        return Page(
            body=body,
            etag=etag_of(body),
            surrogate_key=_surrogate_key(where.code, products),
            market=where.code,
            products=frozenset(p.id for p in products),
            stock=labels,
            listing=listing,
            by_category=by_category,
            until=until,
        )

    # --- changes ----------------------------------------------------------------------------

    def listen(self, changes: Changes) -> None:
        for kind in (
            ProductChanged,
            ProductPublished,
            CategoryChanged,
            PriceChanged,
            MarketChanged,
            FxRateChanged,
            SaleChanged,
        ):
            changes.listen(kind.event_type, self.changed)

    def changed(self, event_type: str, payload: dict[str, Any]) -> None:
        """Drop the pages an event makes wrong (a Changes listener)."""
        if event_type in (ProductChanged.event_type, ProductPublished.event_type):
            product = payload["product_id"]
            # Any listing may gain or lose it, or show its new texts.
            self._drop(lambda page: page.listing or product in page.products)
        elif event_type == CategoryChanged.event_type:
            self._drop(lambda page: page.by_category)
        elif event_type == PriceChanged.event_type:
            sku = payload["sku"]
            self._drop(lambda page: sku in page.stock)
        elif event_type == MarketChanged.event_type:
            market = payload["code"]
            self._drop(lambda page: page.market == market)
        elif event_type == SaleChanged.event_type:
            market = payload["market"]
            self._drop(lambda page: page.market == market)
        else:  # an exchange rate: converted prices anywhere
            self._drop(lambda page: True)

    def _drop(self, wrong: Callable[[Page], bool]) -> None:
        self._generation += 1
        self._reading.forget()  # a page being read may be wrong already: the next reads afresh
        for key in [key for key, page in self._pages.items() if wrong(page)]:
            del self._pages[key]

    # --- stock ------------------------------------------------------------------------------

    async def check_stock(self) -> None:
        """Drop the pages whose stock labels no longer hold."""
        skus = sorted({sku for page in self._pages.values() for sku in page.stock})
        if not skus:
            return
        generation = self._generation
        labels: dict[str, StockLabel] = {}
        for start in range(0, len(skus), STOCK_CHUNK):
            chunk = skus[start : start + STOCK_CHUNK]
            available = await self._stock(chunk)
            labels.update((sku, stock_label(available.get(sku, 0))) for sku in chunk)
        if generation != self._generation:
            # A page kept meanwhile was read after these counts; the next round checks it.
            return
        stale = [
            key
            for key, page in self._pages.items()
            if any(labels.get(sku, shown) is not shown for sku, shown in page.stock.items())
        ]
        for key in stale:
            del self._pages[key]

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


def _product_json(
    product: LocalizedProduct, prices: dict[str, ShelfPrice], labels: dict[str, StockLabel]
) -> dict[str, Any]:
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "locale": product.locale,
        "category": product.category,
        "variants": [
            {
                "sku": v.sku,
                "attributes": v.attributes,
                "price": _money(prices[v.sku].price) if v.sku in prices else None,
                "compare_at": _money(prices[v.sku].compare_at) if v.sku in prices else None,
                "stock": labels[v.sku].value,
            }
            for v in product.variants
        ],
    }


def _money(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else {"amount": money.amount, "currency": money.currency}


def _surrogate_key(market: str, products: list[LocalizedProduct]) -> str:
    """The keys a CDN can purge this page by: its market and each product on it."""
    return " ".join([f"market-{market}", *(f"product-{p.id}" for p in products)])
