"""Analytics' public use cases: take the shop's events as facts, keep them in the warehouse,
and answer what sold, and how carts got there or did not.

Facts arrive with the events that tell them (through the inbox, in the same transaction as
its mark, so a redelivered event adds nothing) and wait in a table until a sealing writes
them to the warehouse's Parquet files. Questions are answered by DuckDB over the files and
the facts still waiting, so an answer includes the last purchase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import structlog
from sqlalchemy import delete, insert, select, update

from colonnade.kernel.bulk import insert_rows
from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.placements import Placement, Placements
from colonnade.kernel.uow import Read, UnitOfWork
from colonnade.modules.analytics import domain, forecasting
from colonnade.modules.analytics.domain import (
    CHECKOUTS,
    OUTBOX_LAG,
    POOL_IN_USE,
    POOL_SIZE,
    CategorySales,
    Customers,
    Decline,
    Declines,
    Fact,
    Forecast,
    Funnel,
    Growth,
    InvalidForecastDay,
    InvalidInsightWindow,
    Moment,
    ProductSales,
    RevenueBucket,
    RouteLatency,
    RouteMinute,
    SalesFigures,
    StockOut,
    SystemMinute,
    WeekOverWeek,
)
from colonnade.modules.analytics.schema import customers, staged_batches
from colonnade.modules.analytics.warehouse import Warehouse, packed, table_of, unpacked, without
from colonnade.modules.cart.events import CartUpdated
from colonnade.modules.checkout.events import CheckoutFailed
from colonnade.modules.compliance.events import CustomerDataErased
from colonnade.modules.inventory.events import StockDepleted, StockLevelSet
from colonnade.modules.orders.events import OrderPaid, OrderPlaced, OrderRefunded
from colonnade.modules.orders.service import Order, OrderStatus, Page

__all__ = [
    "CHECKOUTS",
    "CHECKOUT_ROUTE",
    "EVENT_TYPES",
    "OUTBOX_LAG",
    "POOL_IN_USE",
    "POOL_SIZE",
    "AnalyticsService",
    "CategorySales",
    "Customers",
    "Decline",
    "Declines",
    "Forecast",
    "Funnel",
    "Growth",
    "InvalidForecastDay",
    "InvalidInsightWindow",
    "Moment",
    "ProductSales",
    "RevenueBucket",
    "RouteLatency",
    "RouteMinute",
    "SalesFigures",
    "StockOut",
    "SystemMinute",
    "WeekOverWeek",
]

log = structlog.get_logger(__name__)

# The events that become facts.
EVENT_TYPES = (
    OrderPlaced.event_type,
    OrderPaid.event_type,
    OrderRefunded.event_type,
    CartUpdated.event_type,
    CheckoutFailed.event_type,
    StockDepleted.event_type,
    StockLevelSet.event_type,
    CustomerDataErased.event_type,
)
# The facts the orders tell again when the warehouse is rebuilt; the others (carts started,
# checkouts refused, stock-outs and restocks) only their events told, so a rebuild keeps them.
ORDER_KINDS = (domain.PLACED, domain.LINE, domain.PAID, domain.REFUNDED)
# Facts sealed into one batch of files at most (unless one staged row holds more), from this
# many staged rows at most: a sealing's memory stays bounded.
SEAL_BATCH = 200_000
SEAL_ROWS = 5_000
# Orders read per page while rebuilding.
REBUILD_PAGE = 100
# The route the timeline follows unless asked for another: the purchase.
CHECKOUT_ROUTE = "POST /store/carts/{cart_id}/checkout"
# Minutes of a process's routes written to the files together.
MINUTES_PER_FILE = 10
# SKUs placed per call to the catalog.
PLACEMENTS_SLICE = 1_000

OrderPages = Callable[[int, int], Awaitable[Page[Order]]]


class AnalyticsService:
    def __init__(
        self,
        db: Database,
        warehouse: Path,
        *,
        placements: Placements | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._clock = clock or SystemClock()
        self._warehouse = Warehouse(warehouse)
        # Where the catalog places SKUs now: categories are asked at question time, so a
        # product moved to another category counts there for its past sales too.
        self._placements = placements
        # One sealing at a time in this process; other processes claim other rows.
        self._sealing = asyncio.Lock()
        # What this process answered and read lately, not yet in the files.
        self._unwritten: list[RouteMinute] = []
        self._unread: list[SystemMinute] = []

    # --- facts in ----------------------------------------------------------------------------

    async def record(self, envelopes: Sequence[Envelope], uow: UnitOfWork) -> None:
        """The facts these events tell, kept in the consumer's transaction (an inbox guard);
        an erased customer's link to their pseudonym forgotten."""
        erased = sorted(
            {
                str(envelope.payload["customer_id"])
                for envelope in envelopes
                if envelope.event_type == CustomerDataErased.event_type
            }
        )
        if erased:
            await self._forget(uow, erased)
        buyers = {
            str(envelope.payload["customer_id"])
            for envelope in envelopes
            if envelope.event_type == OrderPlaced.event_type and envelope.payload.get("customer_id")
        }
        pseudonyms = await self._pseudonyms(uow, buyers)
        facts = [fact for envelope in envelopes for fact in _facts_of(envelope, pseudonyms)]
        await _stage(uow, facts)

    async def seal(self) -> int:
        """Write the waiting facts to the warehouse's files; how many were written."""
        async with self._sealing:
            # Batches a sealing cut short before are finished here too.
            async with self._db.reading() as conn:
                found = await conn.execute(
                    select(staged_batches.c.batch).where(staged_batches.c.batch.is_not(None))
                )
                batches = {str(batch) for (batch,) in found}
                waiting = (
                    await conn.execute(
                        select(staged_batches.c.id, staged_batches.c.facts_count)
                        .where(staged_batches.c.batch.is_(None))
                        .order_by(staged_batches.c.id)
                        .limit(SEAL_ROWS)
                    )
                ).all()
            if waiting:
                claimed = new_id()
                async with self._db.transaction() as uow:
                    await uow.execute(
                        update(staged_batches)
                        .where(
                            staged_batches.c.id.in_(_first_of(waiting, SEAL_BATCH)),
                            staged_batches.c.batch.is_(None),
                        )
                        .values(batch=claimed)
                    )
                    await uow.commit()
                batches.add(claimed)
            sealed = 0
            for batch in sorted(batches):
                async with self._db.reading() as conn:
                    found = await conn.execute(
                        select(staged_batches.c.facts).where(staged_batches.c.batch == batch)
                    )
                    facts = [unpacked(packed_facts) for (packed_facts,) in found]
                if not facts:
                    continue
                table = pa.concat_tables(facts)
                await asyncio.to_thread(self._warehouse.write, batch, table)
                async with self._db.transaction() as uow:
                    await uow.execute(delete(staged_batches).where(staged_batches.c.batch == batch))
                    await uow.commit()
                sealed += table.num_rows
            if sealed:
                log.info("analytics.sealed", facts=sealed, batches=len(batches))
            return sealed

    async def rebuild(
        self, pages: OrderPages, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Forget every fact of an order and take them again from the orders as they stand;
        how many orders were read. Carts started, checkouts refused, stock-outs and restocks
        are kept as they are: only their events told them. `pages(limit, offset)` is the
        orders' search, newest first (an order placed meanwhile moves the rest down a place:
        one is read twice, none is missed); `progress(done, total)` follows it. A refund made
        while it runs may be counted twice until the next rebuild (the order's refunds are
        rebuilt as one)."""
        await asyncio.to_thread(self._warehouse.forget, ORDER_KINDS)
        async with self._db.transaction() as uow:
            staged = await uow.execute(select(staged_batches.c.id, staged_batches.c.facts))
            for row_id, packed_facts in staged.all():
                facts = unpacked(packed_facts)
                kept = without(facts, ORDER_KINDS)
                if kept.num_rows == facts.num_rows:
                    continue
                chosen = staged_batches.c.id == row_id
                if kept.num_rows:
                    await uow.execute(
                        update(staged_batches)
                        .where(chosen)
                        .values(facts=packed(kept), facts_count=kept.num_rows)
                    )
                else:
                    await uow.execute(delete(staged_batches).where(chosen))
            await uow.commit()
        done = 0
        while True:
            page = await pages(REBUILD_PAGE, done)
            if not page.items:
                break
            async with self._db.transaction() as uow:
                buyers = {o.customer_id for o in page.items if o.customer_id is not None}
                pseudonyms = await self._pseudonyms(uow, buyers)
                await _stage(
                    uow,
                    [fact for order in page.items for fact in _facts_of_order(order, pseudonyms)],
                )
                await uow.commit()
            done += len(page.items)
            if progress is not None:
                progress(done, page.total)
        await self.seal()
        return done

    async def _pseudonyms(self, uow: UnitOfWork, customer_ids: Set[str]) -> dict[str, str]:
        """Each customer's pseudonym, made the first time they are seen; an erased customer
        has none."""
        if not customer_ids:
            return {}
        ids = sorted(customer_ids)
        await insert_rows(
            uow,
            customers,
            [{"customer_id": c, "pseudonym": new_id()} for c in ids],
            skip_conflicts_on=("customer_id",),
        )
        found = await uow.execute(
            select(customers.c.customer_id, customers.c.pseudonym).where(
                customers.c.customer_id.in_(ids)
            )
        )
        return {customer: pseudonym for customer, pseudonym in found if pseudonym is not None}

    async def _forget(self, uow: UnitOfWork, customer_ids: Sequence[str]) -> None:
        """The customers' pseudonyms name nobody from now on: their links are emptied (kept
        empty, so an event of theirs told again makes no new link)."""
        await insert_rows(
            uow,
            customers,
            [{"customer_id": c, "pseudonym": None} for c in customer_ids],
            skip_conflicts_on=("customer_id",),
        )
        await uow.execute(
            update(customers)
            .where(customers.c.customer_id.in_(customer_ids))
            .values(pseudonym=None)
        )

    # --- questions ---------------------------------------------------------------------------

    async def sales(
        self, start: datetime, end: datetime, market: str | None = None
    ) -> SalesFigures:
        """Paid orders placed in [start, end), of one market or all: how many, their revenue
        and what has been refunded of them, per currency."""
        start, end = domain.sales_window(start, end)
        # The table first, then the files: see Warehouse.sales.
        staged = await self._waiting()
        rows = await asyncio.to_thread(self._warehouse.sales, staged, start, end, market)
        return domain.figures(rows)

    async def revenue(
        self, start: datetime, end: datetime, every: str, market: str | None = None
    ) -> list[RevenueBucket]:
        """Paid orders placed in [start, end) and their revenue per currency, by UTC hour or
        day (`every`), every bucket of the window listed, empty ones too."""
        start, end = domain.series_window(start, end, every)
        step = int(domain.EVERY[every].total_seconds())
        staged = await self._waiting()
        rows = await asyncio.to_thread(self._warehouse.revenue, staged, start, end, market, step)
        return domain.series(start, end, every, rows)

    async def top_products(
        self, start: datetime, end: datetime, market: str | None = None, limit: int = 10
    ) -> list[ProductSales]:
        """What paid orders placed in [start, end) bought, per SKU and currency, the most
        units first (then the most revenue)."""
        start, end = domain.sales_window(start, end)
        staged = await self._waiting()
        rows = await asyncio.to_thread(self._warehouse.products, staged, start, end, market, limit)
        return [ProductSales(sku, units, Money(revenue, c)) for sku, c, units, revenue in rows]

    async def top_categories(
        self, start: datetime, end: datetime, market: str | None = None, limit: int = 10
    ) -> list[CategorySales]:
        """What paid orders placed in [start, end) bought, per category (with those below it)
        and currency, the most units first."""
        start, end = domain.sales_window(start, end)
        rows = [line for _, line in await self._lines(start, end, market, end)]
        return domain.by_category(rows, await self._placed(rows), limit)

    async def growth(self, end: datetime | None = None, market: str | None = None) -> WeekOverWeek:
        """Demand in the week before `end` (now, on the shop's clock, without) against the
        week before that, per market and per category in each market."""
        first, middle, end = domain.growth_window(end or self._clock.now())
        lines = await self._lines(first, end, market, middle)
        week = [line for later, line in lines if later]
        before = [line for later, line in lines if not later]
        rows = domain.growth(week, before, await self._placed([line for _, line in lines]))
        return WeekOverWeek(first, middle, end, tuple(rows))

    async def funnel(
        self, start: datetime, end: datetime, market: str | None = None
    ) -> list[Funnel]:
        """Per market, carts that got their first line in [start, end), checkouts decided in
        it (orders placed, checkouts refused by why) and the orders of it paid."""
        return domain.funnels(await self._outcomes(start, end, market))

    async def declines(self, start: datetime, end: datetime, market: str | None = None) -> Declines:
        """Payments declined in [start, end) by reason, against the checkouts in it that
        asked for payment."""
        return domain.declines(await self._outcomes(start, end, market))

    async def checkouts(
        self, start: datetime, end: datetime, market: str | None = None
    ) -> tuple[list[Funnel], Declines]:
        """The funnel and the declines together, from one read of the warehouse."""
        outcomes = await self._outcomes(start, end, market)
        return domain.funnels(outcomes), domain.declines(outcomes)

    async def forecast(
        self, day: date | None = None, market: str | None = None
    ) -> tuple[datetime, list[Forecast], list[str]]:
        """Each market's paid orders per hour of `day` (tomorrow without one), predicted from
        its last four weeks by hour, with the model's error on the last day it knows; and the
        markets with too little history (three days) to predict. The day's start first."""
        now = self._clock.now()
        start, end = domain.forecast_day(day, now)
        known_to = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        known_from = known_to - domain.HISTORY
        staged = await self._waiting()
        rows = await asyncio.to_thread(self._warehouse.hourly, staged, known_from, known_to, market)
        counts: dict[str, dict[datetime, int]] = {}
        for found_in, hour, orders in rows:
            counts.setdefault(found_in, {})[hour] = orders
        forecasts, too_little = [], []
        for name, by_hour in sorted(counts.items()):
            series = domain.since_first(domain.hourly(by_hour, known_from, known_to))
            if len(series) < domain.LEAST_HISTORY_HOURS:
                too_little.append(name)
                continue
            forecasts.append(await asyncio.to_thread(_forecast, name, series, known_to, start, end))
        return start, forecasts, too_little

    async def keep_minutes(
        self,
        process: str,
        minutes: Sequence[RouteMinute],
        readings: Sequence[SystemMinute] = (),
        *,
        write: bool = False,
    ) -> int:
        """Keep what this process answered per route and minute, and what it read of the
        shop's machinery: counted in answers at once, written to the files every
        MINUTES_PER_FILE minutes, or now with `write`; how many rows were written."""
        self._unwritten += minutes
        self._unread += readings
        told = {m.minute for m in self._unwritten} | {r.minute for r in self._unread}
        if not write and len(told) < MINUTES_PER_FILE:
            return 0
        waiting, self._unwritten = self._unwritten, []
        read, self._unread = self._unread, []
        if waiting or read:
            await asyncio.to_thread(self._warehouse.write_minutes, process, waiting, read)
        return len(waiting) + len(read)

    async def timeline(
        self,
        start: datetime,
        end: datetime,
        every: str,
        market: str | None = None,
        route: str = CHECKOUT_ROUTE,
    ) -> list[Moment]:
        """Every step of [start, end) by UTC minute, hour or day (`every`): paid orders placed
        per market (of one or all) beside the route's requests, errors and p99, checkouts per
        outcome, the outbox's lag and the database connections in use, every process's."""
        start, end = domain.series_window(start, end, every)
        step = int(domain.EVERY[every].total_seconds())
        staged = await self._waiting()
        orders, answered, read = await asyncio.to_thread(
            self._warehouse.timeline,
            staged,
            start,
            end,
            step,
            market,
            route,
            list(self._unwritten),
            list(self._unread),
        )
        return domain.timeline(start, end, every, orders, answered, read)

    async def slowest_routes(
        self, start: datetime, end: datetime, limit: int = 10
    ) -> list[RouteLatency]:
        """The routes answered in [start, end) by their p95 latency, the slowest first, each
        with its requests, server errors, percentiles, and its p95 in the window before (of
        the same length): its trend."""
        start, end = domain.sales_window(start, end)
        rows = await asyncio.to_thread(
            self._warehouse.routes, start - (end - start), end, start, list(self._unwritten)
        )
        return domain.slowest(rows, limit)

    async def customers(
        self, start: datetime, end: datetime, market: str | None = None
    ) -> list[Customers]:
        """Per market, who bought the paid orders placed in [start, end): customers, new and
        returning, and the orders of customers and of guests."""
        start, end = domain.sales_window(start, end)
        staged = await self._waiting()
        rows = await asyncio.to_thread(self._warehouse.customers, staged, start, end, market)
        return [Customers(*row) for row in sorted(rows)]

    async def stock_outs(
        self,
        start: datetime,
        end: datetime,
        market: str | None = None,
        before: timedelta = domain.DEMAND_BEFORE,
    ) -> list[StockOut]:
        """SKUs that sold out in [start, end): when, until when (or still), and the sales
        lost while out, estimated from what paid orders (of one market or all) bought of
        each in the `before` before it sold out."""
        start, end = domain.sales_window(start, end)
        before = domain.demand_window(before)
        staged = await self._waiting()
        rows = await asyncio.to_thread(
            self._warehouse.stock_outs, staged, start, end, market, before
        )
        return domain.stock_outs(rows, self._clock.now(), before)

    async def _outcomes(
        self, start: datetime, end: datetime, market: str | None
    ) -> list[domain.OutcomeCount]:
        start, end = domain.sales_window(start, end)
        staged = await self._waiting()
        return await asyncio.to_thread(self._warehouse.outcomes, staged, start, end, market)

    async def _lines(
        self, start: datetime, end: datetime, market: str | None, split: datetime
    ) -> list[tuple[bool, domain.LineSales]]:
        staged = await self._waiting()
        return await asyncio.to_thread(self._warehouse.lines, staged, start, end, market, split)

    async def _placed(self, rows: Sequence[domain.LineSales]) -> Mapping[str, Placement]:
        if self._placements is None:
            return {}
        skus = sorted({sku for _, sku, _, _, _ in rows})
        placed: dict[str, Placement] = {}
        # In slices: a statement holds a bounded number of values on either database.
        for first in range(0, len(skus), PLACEMENTS_SLICE):
            placed.update(await self._placements(skus[first : first + PLACEMENTS_SLICE]))
        return placed

    async def _waiting(self) -> list[tuple[str | None, bytes]]:
        """The staged batches still in the table, with the sealing that claimed each (None:
        not yet)."""
        return [(batch, bytes(facts)) for facts, batch in await self._db.read(_WAITING)]


_WAITING_SQL = "SELECT facts, batch FROM analytics_staged_batches"
_WAITING = Read(postgresql=_WAITING_SQL, sqlite=_WAITING_SQL)


async def _stage(uow: UnitOfWork, facts: Sequence[Fact]) -> None:
    """The facts wait in the table, as one row."""
    if facts:
        await uow.execute(
            insert(staged_batches).values(
                id=new_id(), facts=packed(table_of(facts)), facts_count=len(facts)
            )
        )


def _first_of(waiting: Sequence[Any], facts: int) -> list[str]:
    """The ids of the first staged rows (id, facts_count) that hold `facts` facts at most,
    the first row however many it holds."""
    chosen: list[str] = []
    counted = 0
    for row_id, count in waiting:
        if chosen and counted + count > facts:
            break
        chosen.append(row_id)
        counted += count
    return chosen


def _facts_of(envelope: Envelope, pseudonyms: Mapping[str, str]) -> list[Fact]:
    payload = envelope.payload
    if envelope.event_type == OrderPlaced.event_type:
        placed = envelope.open(OrderPlaced)
        at = _told_at(placed.placed_at, envelope)
        return [
            domain.placed_fact(
                placed.order_id,
                at,
                placed.market,
                placed.total,
                domain.units_of(placed.lines),
                pseudonyms.get(placed.customer_id or "", ""),
            ),
            *domain.line_facts(placed.order_id, at, placed.market, placed.lines),
        ]
    if envelope.event_type == OrderPaid.event_type:
        return [domain.paid_fact(payload["order_id"], envelope.occurred_at, payload["amount"])]
    if envelope.event_type == CartUpdated.event_type:
        updated = envelope.open(CartUpdated)
        if not updated.lines or updated.started is False:
            return []
        at = _told_at(updated.updated_at, envelope)
        units = domain.units_of(updated.lines)
        told_by = envelope.event_id if updated.started else None
        return [domain.cart_started_fact(updated.cart_id, at, updated.market, units, told_by)]
    if envelope.event_type == CheckoutFailed.event_type:
        refused = envelope.open(CheckoutFailed)
        return [
            domain.checkout_refused_fact(
                refused.checkout_id,
                _told_at(refused.failed_at, envelope),
                refused.market,
                refused.code,
                refused.reason,
            )
        ]
    if envelope.event_type == StockDepleted.event_type:
        depleted = envelope.open(StockDepleted)
        at = _told_at(depleted.depleted_at, envelope)
        return [domain.stock_out_fact(envelope.event_id, depleted.sku, at)]
    if envelope.event_type == StockLevelSet.event_type:
        level = envelope.open(StockLevelSet)
        # Events from before `available` was told: units on hand in the warehouse set.
        available = level.on_hand if level.available is None else level.available
        if available <= 0:
            return []
        at = _told_at(level.set_at, envelope)
        return [domain.restock_fact(envelope.event_id, level.sku, at, available)]
    if envelope.event_type == OrderRefunded.event_type:
        return [
            domain.refunded_fact(
                payload["order_id"],
                envelope.occurred_at,
                payload["amount"],
                str(payload["refunded_total"]["amount"]),
            )
        ]
    return []


def _forecast(
    market: str, series: list[float], known_to: datetime, start: datetime, end: datetime
) -> Forecast:
    """The model's hours of [start, end), predicted on from `known_to`, and its error when it
    predicted the last day of `series` from the days before."""
    ahead = int((end - known_to) / domain.HOUR)
    day = domain.rounded(forecasting.predict(series, ahead)[-domain.SEASON_HOURS :])
    checked = forecasting.predict(series[: -domain.SEASON_HOURS], domain.SEASON_HOURS)
    return Forecast(
        market=market,
        hours=tuple((start + i * domain.HOUR, orders) for i, orders in enumerate(day)),
        backtest_error=domain.backtest_error(series[-domain.SEASON_HOURS :], checked),
        history_hours=len(series),
    )


def _told_at(at: str | None, envelope: Envelope) -> datetime:
    """When the event says it happened, on the shop's clock; when it was written for an
    event from before it said so."""
    return datetime.fromisoformat(at) if at is not None else envelope.occurred_at


def _facts_of_order(order: Order, pseudonyms: Mapping[str, str]) -> list[Fact]:
    """What an order's events told, as far as the order still shows it: its placement, its
    payment, and everything refunded of it as one refund."""
    # The lines as OrderPlaced tells them, so both ways in make the same facts.
    lines = [
        {"sku": line.sku, "quantity": line.quantity, "line_total": line.line_total.as_dict()}
        for line in order.lines
    ]
    facts = [
        domain.placed_fact(
            order.id,
            order.placed_at,
            order.market,
            order.total.as_dict(),
            domain.units_of(lines),
            pseudonyms.get(order.customer_id or "", ""),
        ),
        *domain.line_facts(order.id, order.placed_at, order.market, lines),
    ]
    paid_at = next((h.at for h in order.history if h.to_status is OrderStatus.PAID), None)
    if paid_at is not None:
        facts.append(domain.paid_fact(order.id, paid_at, order.paid.as_dict()))
    if order.refunded.amount:
        last = max(h.at for h in order.history)
        facts.append(domain.refunded_fact(order.id, last, order.refunded.as_dict(), "all"))
    return facts
