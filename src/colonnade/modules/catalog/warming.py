"""Store pages read ahead of a scheduled sale's start.

At a sale's first moment every page showing one of its SKUs changes price, so every such page
a process keeps ends at once, and the sale's first shoppers would each wait on a read of a
page nobody has read yet, all in the same second, when the most of them come. So each process
that serves the store, once a sale starts within the lead time (COLONNADE_SALE_WARM_MINUTES),
reads ahead the pages of the sale's market as they will be from its start (pages.py): the page
of every product the sale reaches (its SKUs' products, the products it names, the products of
its categories and of those below them) in the market's language, and every page it keeps
that the start will end (listings, searches, other languages). At the start they are served
without a read.

Each process warms a sale once. A change that drops pages read ahead (a price, a product,
another sale of the market, a stock label that no longer holds) makes the upcoming sales due
again, and then only what is missing is read. Staff may warm a sale at once
(POST /admin/sales/{id}/warm): that warms the process that answers, and the others warm by
themselves within the lead time.

Pages are read one at a time, so warming holds one database connection at most and never
crowds out shoppers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from colonnade.kernel.clock import Clock
from colonnade.kernel.errors import Conflict
from colonnade.kernel.metrics import PAGES_PREWARMED, SALES_PREWARMED
from colonnade.kernel.periodic import Every
from colonnade.modules.catalog.domain import (
    MAX_OFFSET,
    MAX_PAGE,
    CategoryNotFound,
    InvalidCategory,
)
from colonnade.modules.catalog.pages import MarketLike, StorePages
from colonnade.modules.catalog.service import CatalogService
from colonnade.modules.pricing.service import Sale

log = structlog.get_logger(__name__)

# How often a process looks for sales starting within the lead time (more often when the
# lead time is shorter, so none slips by).
CHECK_SECONDS = 30.0


class SaleEnded(Conflict):
    code = "sale_ended"

    def __init__(self, sale_id: str) -> None:
        super().__init__(
            f"the sale {sale_id} has ended: its prices are shown no more", sale_id=sale_id
        )


class SaleBook(Protocol):
    async def sale(self, sale_id: str) -> Sale:
        """The sale; a 404 problem (sale_not_found) when there is none."""
        ...

    async def sales_starting(self, after: datetime, until: datetime) -> list[Sale]:
        """The sales of every market that start after `after` and by `until`."""
        ...

    async def market(self, code: str) -> MarketLike: ...


@dataclass(frozen=True)
class Warmed:
    sale: Sale
    # Store pages read ahead (or, for a sale that has started, read for now).
    pages: int


class SaleWarming:
    def __init__(
        self,
        pages: StorePages,
        catalog: CatalogService,
        sales: SaleBook,
        *,
        lead: timedelta,
        clock: Clock,
    ) -> None:
        self._pages = pages
        self._catalog = catalog
        self._sales = sales
        self._lead = lead
        self._clock = clock
        # The upcoming sales warmed here, each with how many pages read ahead had been
        # dropped when it was: a count grown since means some may be missing.
        self._warmed: dict[str, int] = {}
        self._loop = Every(
            "colonnade-sale-warming",
            max(1.0, min(CHECK_SECONDS, lead.total_seconds() / 2)),
            self.warm_due,
            "sale_warming.failed",
        )

    async def warm_due(self) -> int:
        """Warm the sales starting within the lead time that this process has not warmed, or
        has lost pages of since; how many pages were read."""
        now = self._clock.now()
        upcoming = await self._sales.sales_starting(now, now + self._lead)
        # Sales that have started or were ended before starting are out of mind.
        self._warmed = {s.id: self._warmed[s.id] for s in upcoming if s.id in self._warmed}
        read = 0
        for sale in upcoming:
            if self._warmed.get(sale.id) != self._pages.ahead_dropped:
                read += (await self._warm(sale, "schedule")).pages
        return read

    async def warm(self, sale_id: str) -> Warmed:
        """Warm a sale now, whenever it starts (staff ask); SaleEnded when it is over."""
        sale = await self._sales.sale(sale_id)
        if sale.ends_at is not None and sale.ends_at <= self._clock.now():
            raise SaleEnded(sale_id)
        return await self._warm(sale, "staff")

    async def _warm(self, sale: Sale, trigger: str) -> Warmed:
        dropped = self._pages.ahead_dropped
        at = max(sale.starts_at, self._clock.now())
        read = await self._pages.prepare(sale.market, at, await self._products_of(sale))
        self._warmed[sale.id] = dropped
        SALES_PREWARMED.labels(trigger).inc()
        PAGES_PREWARMED.inc(read)
        log.info(
            "sale.prewarmed",
            sale_id=sale.id,
            market=sale.market,
            starts_at=sale.starts_at.isoformat(),
            pages=read,
            trigger=trigger,
        )
        return Warmed(sale, read)

    async def _products_of(self, sale: Sale) -> list[str]:
        """The products the sale reaches: its SKUs' products, those it names, and the
        products the store shows in its categories (at most as many as pages are kept)."""
        placed = await self._catalog.placements(list(sale.prices))
        found = dict.fromkeys([product for product, _ in placed.values()])
        found.update(dict.fromkeys(sorted(sale.products)))
        if not sale.categories:
            return list(found)
        locale = (await self._sales.market(sale.market)).locale
        for slug in sorted(sale.categories):
            offset = 0
            while len(found) < self._pages.size and offset <= MAX_OFFSET:
                try:
                    shown = await self._catalog.products(
                        locale, category=slug, limit=MAX_PAGE, offset=offset
                    )
                except (CategoryNotFound, InvalidCategory):
                    # A sale may name a category before staff make it, or one no slug can
                    # name (pricing keeps what it is given): no page shows it yet.
                    break
                found.update(dict.fromkeys(p.id for p in shown))
                if len(shown) < MAX_PAGE:
                    break
                offset += MAX_PAGE
        return list(found)

    def start(self) -> None:
        """Warm by the schedule (not with a lead time of 0: then only when staff ask)."""
        if self._lead > timedelta(0):
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
