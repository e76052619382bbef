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

Pages can also be read ahead for a moment to come (a sale's start, see warming.py): priced as
from then, they wait beside the pages served now, are dropped by the same changes and stock
checks, and take their place when the moment comes, so the first shoppers of a sale find them
ready instead of all waiting on reads in the same second.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
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
from colonnade.modules.catalog.service import CatalogService, LocalizedProduct, ProductNotFound
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
        self, skus: list[str], market_code: str, at: datetime | None = None
    ) -> tuple[dict[str, ShelfPrice], datetime | None]:
        """Each priced SKU's price in the market's currency now (or at `at`), with its price
        before a running sale; and when the market's sales next start or end after that."""
        ...


# Units available per SKU (0 for a SKU never stocked).
StockBook = Callable[[list[str]], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Listing:
    """A listing or a search, as a shopper asks for it (no locale: the market's)."""

    market: str
    locale: str | None
    q: str | None
    category: str | None
    limit: int
    offset: int


@dataclass(frozen=True)
class ProductShown:
    """A product's page, as a shopper asks for it (no locale: the market's)."""

    product_id: str
    market: str
    locale: str | None


PageKey = Listing | ProductShown


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
    # A page read ahead: from when its prices hold (None: a page read for now).
    since: datetime | None = None

    def holds(self, now: datetime) -> bool:
        """Whether this is the page to answer with at `now`."""
        return (self.since is None or self.since <= now) and (
            self.until is None or now < self.until
        )


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
        self.size = size
        self._stock_seconds = stock_seconds
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        # Pages read ahead for a moment to come, served once it has come.
        self._ahead: OrderedDict[PageKey, Page] = OrderedDict()
        self._reading: SharedReads[PageKey, Page] = SharedReads()
        # Bumped by every change: a page read across a change is not kept.
        self._generation = 0
        # Pages read ahead that a change or a stock check dropped (or that a change kept from
        # being kept): what reads them ahead looks here to know it should read them again.
        self.ahead_dropped = 0
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
        return await self._kept(Listing(market, locale, q, category, limit, offset))

    async def product(self, product_id: str, market: str, locale: str | None) -> Page:
        return await self._kept(ProductShown(product_id, market, locale))

    async def _kept(self, key: PageKey) -> Page:
        now = self._clock.now()
        page = self._pages.get(key)
        if page is not None and page.holds(now):
            return page
        ahead = self._ahead.get(key)
        if ahead is not None and ahead.holds(now):
            # Its moment has come: it is the page now.
            del self._ahead[key]
            self._keep(self._pages, key, ahead)
            return ahead

        async def read_and_keep() -> Page:
            generation = self._generation
            page = await self._read(key)
            if generation == self._generation:
                self._keep(self._pages, key, page)
            return page

        # Shoppers asking for the same page while it is read wait for that one read.
        return await self._reading.read(key, read_and_keep)

    def _keep(self, pages: OrderedDict[PageKey, Page], key: PageKey, page: Page) -> None:
        pages[key] = page
        if len(pages) > self.size:
            pages.popitem(last=False)

    async def _read(self, key: PageKey, at: datetime | None = None) -> Page:
        """The page `key` names, priced now or, with `at`, as from that moment."""
        where = await self._pricing.market(key.market)
        # An empty locale is asked for, not left out: it is refused as no locale at all.
        locale = where.locale if key.locale is None else key.locale
        if isinstance(key, ProductShown):
            found = await self._catalog.product(key.product_id, locale, published_only=True)
            return await self._page([found], where, at, listing=False, by_category=False)
        listed = await self._catalog.products(
            locale, q=key.q, category=key.category, limit=key.limit, offset=key.offset
        )
        return await self._page(
            listed, where, at, listing=True, by_category=key.category is not None
        )

    async def _page(
        self,
        products: list[LocalizedProduct],
        where: MarketLike,
        at: datetime | None,
        *,
        listing: bool,
        by_category: bool,
    ) -> Page:
        skus = [v.sku for p in products for v in p.variants]
        prices, until = (
            await self._pricing.shelf_prices(skus, where.code, at) if skus else ({}, None)
        )
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

    # --- reading ahead ----------------------------------------------------------------------

    async def prepare(self, market: str, at: datetime, product_ids: Iterable[str]) -> int:
        """Read the pages of `market` that change at `at` (a sale's start) as they will be
        from then: every page kept now that `at` ends, and the page of each product named in
        the market's language. A page ready for `at` already is not read again, nor one for a
        product the store does not show; at most `size` pages. How many were read and kept.
        With `at` come already, the pages are read for now, like a shopper's."""
        changing = [
            k for k, page in self._pages.items() if page.market == market and page.until == at
        ]
        wanted = dict.fromkeys([*changing, *(ProductShown(p, market, None) for p in product_ids)])
        now = self._clock.now()
        read = 0
        for key in list(wanted)[: self.size]:
            try:
                kept = await (self._fill(key, now) if at <= now else self._read_ahead(key, at))
            except ProductNotFound:
                continue  # a draft, or an id no product has: the store shows nothing for it
            read += kept
        return read

    async def _read_ahead(self, key: PageKey, at: datetime) -> bool:
        ready = self._ahead.get(key)
        if ready is not None and ready.since == at:
            return False
        generation = self._generation
        page = replace(await self._read(key, at), since=at)
        if generation != self._generation:
            self.ahead_dropped += 1
            return False
        self._keep(self._ahead, key, page)
        return True

    async def _fill(self, key: PageKey, now: datetime) -> bool:
        page = self._pages.get(key)
        if page is not None and page.holds(now):
            return False
        await self._kept(key)
        return True

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
        for key in [key for key, page in self._ahead.items() if wrong(page)]:
            del self._ahead[key]
            self.ahead_dropped += 1

    # --- stock ------------------------------------------------------------------------------

    async def check_stock(self) -> None:
        """Drop the pages whose stock labels no longer hold (and pages read ahead whose
        moment has come and gone)."""
        now = self._clock.now()
        for key in [
            k for k, page in self._ahead.items() if page.until is not None and page.until <= now
        ]:
            del self._ahead[key]
        kept = [*self._pages.values(), *self._ahead.values()]
        skus = sorted({sku for page in kept for sku in page.stock})
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
        for key in _stale(self._pages, labels):
            del self._pages[key]
        for key in _stale(self._ahead, labels):
            del self._ahead[key]
            self.ahead_dropped += 1

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


def _stale(pages: OrderedDict[PageKey, Page], labels: dict[str, StockLabel]) -> list[PageKey]:
    """The pages showing a stock label that no longer holds."""
    return [
        key
        for key, page in pages.items()
        if any(labels.get(sku, shown) is not shown for sku, shown in page.stock.items())
    ]


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
