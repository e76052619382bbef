"""Pricing's public use cases: markets, price lists, exchange rates, scheduled sales and
quotes.

Every method is one transaction (or one read). Prices for a page of SKUs or a cart take two
queries whatever their number: the market with its exchange rate, then every price at once.
The sale prices of the SKUs asked for come in the same query as their prices, with the
market's sales of whole products and categories (placed through the catalog's port): each
price is the sale price of a sale running at that moment, so a sale starts and ends on the
clock, with no deploy and no switch, and every process sees it at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from babel import Locale, UnknownLocaleError
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.bulk import insert_rows
from colonnade.kernel.cache import Recent
from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError, InvalidInput
from colonnade.kernel.events import Envelope
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money, currency_code
from colonnade.kernel.placements import Placement, Placements
from colonnade.kernel.uow import Read, UnitOfWork, read, stored_time
from colonnade.modules.pricing import domain
from colonnade.modules.pricing.domain import (
    InvalidSale,
    InvalidSaleWindow,
    Market,
    PriceMissing,
    Quote,
    QuoteLine,
    Sale,
    SaleNotFound,
    SaleOverlaps,
    ShelfPrice,
    UnknownLocale,
    UnknownMarket,
)
from colonnade.modules.pricing.events import (
    FxRateChanged,
    MarketChanged,
    PriceChanged,
    SaleChanged,
)
from colonnade.modules.pricing.schema import fx_rates, markets, sale_prices, sales
from colonnade.modules.pricing.schema import prices as price_rows

__all__ = [
    "InvalidSale",
    "InvalidSaleWindow",
    "Market",
    "NewSale",
    "PriceMissing",
    "PricingService",
    "Quote",
    "QuoteLine",
    "Sale",
    "SaleNotFound",
    "SaleOverlaps",
    "ShelfPrice",
    "UnknownMarket",
]


@dataclass(frozen=True)
class NewSale:
    name: str
    market: str
    # (SKU, its sale price in the market's currency, or None for percent_off its price).
    prices: tuple[tuple[str, Money | None], ...]
    percent_off: int | None = None
    # Product ids and category slugs whose every variant the sale puts at percent_off.
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # None: from the moment it is made.
    starts_at: datetime | None = None
    ends_at: datetime | None = None


MAX_SKU = 200


class InvalidSku(InvalidInput):
    code = "invalid_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"a SKU is 1 to {MAX_SKU} characters; got {len(sku)}", sku=sku[:MAX_SKU])


# The prices of a batch's SKUs with the market's sales of them that have not ended, and the
# market's sales of whole products and categories that have not ended: one fixed statement on
# each database whatever their number (the sales' rows first: SQLite's union takes the first
# select's column types).
_PRICES = Read(
    postgresql=(
        "SELECT p.sku, p.amount, s.currency, s.id, s.percent_off, s.starts_at, s.ends_at,"
        " NULL::text AS target"
        " FROM pricing_sale_prices AS p JOIN pricing_sales AS s ON s.id = p.sale_id"
        " WHERE p.sku = ANY($1::varchar[]) AND s.market = $3"
        " AND (s.ends_at IS NULL OR s.ends_at > $4)"
        " UNION ALL SELECT NULL, NULL, currency, id, percent_off, starts_at, ends_at,"
        " target::text FROM pricing_sales WHERE market = $3 AND target IS NOT NULL"
        " AND (ends_at IS NULL OR ends_at > $4)"
        " UNION ALL SELECT sku, amount, currency, NULL, NULL, NULL, NULL, NULL FROM pricing_prices"
        " WHERE sku = ANY($1::varchar[]) AND currency = ANY($2::varchar[])"
    ),
    sqlite=(
        "SELECT p.sku, p.amount, s.currency, s.id, s.percent_off, s.starts_at, s.ends_at,"
        " NULL AS target"
        " FROM pricing_sale_prices AS p JOIN pricing_sales AS s ON s.id = p.sale_id"
        " WHERE p.sku IN (SELECT value FROM json_each(?1)) AND s.market = ?3"
        " AND (s.ends_at IS NULL OR s.ends_at > ?4)"
        " UNION ALL SELECT NULL, NULL, currency, id, percent_off, starts_at, ends_at, target"
        " FROM pricing_sales WHERE market = ?3 AND target IS NOT NULL"
        " AND (ends_at IS NULL OR ends_at > ?4)"
        " UNION ALL SELECT sku, amount, currency, NULL, NULL, NULL, NULL, NULL FROM pricing_prices"
        " WHERE sku IN (SELECT value FROM json_each(?1))"
        " AND currency IN (SELECT value FROM json_each(?2))"
    ),
)


class PricingService:
    def __init__(
        self,
        db: Database,
        *,
        base_currency: str,
        clock: Clock | None = None,
        reference_cache_seconds: float = 0.0,
        changes: Changes | None = None,
        placements: Placements | None = None,
    ) -> None:
        self._db = db
        self._changes = changes
        # Asked only while a sale of whole products or categories has not ended.
        self._placements = placements
        # Prices in this currency are converted for markets that have none of their own.
        self.base_currency = currency_code(base_currency)
        self._clock = clock or SystemClock()
        # Every cart and checkout reads its market; markets and exchange rates rarely change.
        self._markets: Recent[str, tuple[Market, Decimal | None]] = Recent(reference_cache_seconds)
        # The storefront lists the markets on every page; kept until one changes.
        self._market_list: list[Market] | None = None
        if changes is not None:
            for kind in (MarketChanged, FxRateChanged):
                changes.listen(kind.event_type, lambda *_: self._forget_markets())

    # --- markets ---------------------------------------------------------------------------

    async def set_market(
        self,
        code: str,
        name: str,
        currency: str,
        locale: str,
        tax_inclusive: bool,
        tax_rate: Decimal,
        time_zone: str | None = None,
    ) -> Market:
        """Open a market or change one; everything is checked before anything is written.
        Without a time zone a market keeps its own (a new one starts on UTC)."""
        found = domain.market(
            code,
            name,
            currency,
            _locale_tag(locale),
            tax_inclusive,
            tax_rate,
            "UTC" if time_zone is None else time_zone,
        )
        row = {
            "code": found.code,
            "name": found.name,
            "currency": found.currency,
            "locale": found.locale,
            "tax_inclusive": found.tax_inclusive,
            "tax_rate": str(found.tax_rate),
            "time_zone": found.time_zone,
        }
        changed = [k for k in row if k != "code" and (k != "time_zone" or time_zone is not None)]
        async with self._db.transaction() as uow:
            insert = _insert(uow, markets).values(**row)
            stored = (
                await uow.execute(
                    insert.on_conflict_do_update(
                        index_elements=[markets.c.code],
                        set_={k: insert.excluded[k] for k in changed},
                    ).returning(markets.c.time_zone)
                )
            ).scalar_one()
            found = replace(found, time_zone=stored)
            told = [uow.record(MarketChanged(code=found.code))]
            await uow.commit()
        self._forget_markets()
        self._committed(told)
        return found

    async def market(self, code: str) -> Market:
        """The market with this code; UnknownMarket (422) naming the known ones otherwise."""
        where, _ = await self._markets.load_once(code, lambda: self._read_market(code))
        return where

    async def _read_market(self, code: str) -> tuple[Market, Decimal | None]:
        async with self._db.reading() as conn:
            return await self._market_and_rate(conn, code)

    async def markets(self) -> list[Market]:
        if self._market_list is not None:
            return self._market_list
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(markets).order_by(markets.c.code))).all()
        found = [_market(r) for r in rows]
        if self._changes is not None:
            # Only a process that hears of every market change may keep the list.
            self._market_list = found
        return found

    def _forget_markets(self) -> None:
        self._markets.forget()
        self._market_list = None

    def _committed(self, envelopes: list[Envelope]) -> None:
        # This process's caches hear of the change before the call returns.
        if self._changes is not None:
            self._changes.committed(envelopes)

    # --- prices and exchange rates -----------------------------------------------------------

    async def set_prices(self, sku: str, prices: list[Money]) -> None:
        """Make these the SKU's prices: one per currency; currencies left out lose their price."""
        if not sku or len(sku) > MAX_SKU:
            raise InvalidSku(sku)
        checked = domain.checked_prices(sku, prices)
        async with self._db.transaction() as uow:
            await uow.execute(
                delete(price_rows).where(
                    price_rows.c.sku == sku,
                    price_rows.c.currency.not_in([p.currency for p in checked]),
                )
            )
            if checked:
                insert = _insert(uow, price_rows)
                await uow.execute(
                    insert.on_conflict_do_update(
                        index_elements=[price_rows.c.sku, price_rows.c.currency],
                        set_={"amount": insert.excluded.amount},
                    ),
                    [{"sku": sku, "currency": p.currency, "amount": p.amount} for p in checked],
                )
            told = [uow.record(PriceChanged(sku=sku, prices=[p.as_dict() for p in checked]))]
            await uow.commit()
        self._committed(told)

    async def prices(self, sku: str) -> list[Money]:
        """The SKU's prices as set, one per currency, sorted by currency; none when unpriced."""
        async with self._db.reading() as conn:
            rows = await conn.execute(
                select(price_rows.c.amount, price_rows.c.currency)
                .where(price_rows.c.sku == sku)
                .order_by(price_rows.c.currency)
            )
            return [Money(int(r.amount), r.currency) for r in rows]

    async def set_fx_rate(self, base: str, quote: str, rate: Decimal) -> None:
        """Set how many units of `quote` one unit of `base` buys."""
        checked = domain.fx_rate_of(base, quote, rate)
        row = {
            "base_currency": base,
            "quote_currency": quote,
            "rate": str(checked),
            "updated_at": self._clock.now(),
        }
        async with self._db.transaction() as uow:
            insert = _insert(uow, fx_rates).values(**row)
            await uow.execute(
                insert.on_conflict_do_update(
                    index_elements=[fx_rates.c.base_currency, fx_rates.c.quote_currency],
                    set_={"rate": insert.excluded.rate, "updated_at": insert.excluded.updated_at},
                )
            )
            told = [uow.record(FxRateChanged(base=base, quote=quote, rate=str(checked)))]
            await uow.commit()
        self._forget_markets()
        self._committed(told)

    async def prices_for(self, skus: list[str], market_code: str) -> dict[str, Money]:
        """Each SKU's price in the market's currency now; SKUs without one are left out."""
        _, found, _, _ = await self._priced(None, skus, market_code)
        return found

    async def shelf_prices(
        self, skus: list[str], market_code: str, at: datetime | None = None
    ) -> tuple[dict[str, ShelfPrice], datetime | None]:
        """Each priced SKU's price now (or at the moment `at`, as the sales known now make it)
        with its price before a running sale (compare_at), and when the market's sales next
        start or end after that: until then these prices hold."""
        _, found, regular, until = await self._priced(None, skus, market_code, at)
        shelf = {sku: ShelfPrice(price, regular.get(sku)) for sku, price in found.items()}
        return shelf, until

    # --- scheduled sales ---------------------------------------------------------------------

    async def create_sale(self, new: NewSale) -> Sale:
        """Schedule a sale; SaleOverlaps when another sale of the market names one of its SKUs,
        products or categories at the same time."""
        where = await self.market(new.market)
        now = self._clock.now()
        made = domain.sale(
            id=new_id(),
            name=new.name,
            market=where,
            percent_off=new.percent_off,
            starts_at=new.starts_at or now,
            ends_at=new.ends_at,
            prices=new.prices,
            products=new.products,
            categories=new.categories,
        )
        async with self._db.transaction() as uow:
            # One sale of a market is made at a time: the overlap check holds.
            await uow.execute(
                select(markets.c.code).where(markets.c.code == where.code).with_for_update()
            )
            domain.clashing(made, await _sales_of(uow.connection, where.code, now))
            await uow.execute(
                sales.insert().values(
                    id=made.id,
                    name=made.name,
                    market=made.market,
                    currency=where.currency,
                    percent_off=made.percent_off,
                    starts_at=made.starts_at,
                    ends_at=made.ends_at,
                    created_at=now,
                    target=(
                        {"products": sorted(made.products), "categories": sorted(made.categories)}
                        if made.by_placement
                        else None
                    ),
                )
            )
            await insert_rows(
                uow,
                sale_prices,
                [
                    {"sale_id": made.id, "sku": sku, "amount": None if p is None else p.amount}
                    for sku, p in made.prices.items()
                ],
            )
            told = [uow.record(SaleChanged(sale_id=made.id, market=made.market))]
            await uow.commit()
        self._committed(told)
        return made

    async def end_sale(self, sale_id: str) -> Sale:
        """End a sale now (one not started yet never starts); ending it again changes nothing."""
        now = self._clock.now()
        async with self._db.transaction() as uow:
            found = await _sale(uow.connection, sale_id)
            if found.ends_at is not None and found.ends_at <= now:
                return found
            ended = replace(found, ends_at=max(now, found.starts_at))
            await uow.execute(
                update(sales).where(sales.c.id == sale_id).values(ends_at=ended.ends_at)
            )
            told = [uow.record(SaleChanged(sale_id=sale_id, market=found.market))]
            await uow.commit()
        self._committed(told)
        return ended

    async def sales(self, market_code: str | None = None) -> list[Sale]:
        """Every sale (of one market), the latest to start first."""
        async with self._db.reading() as conn:
            return await _sales_of(conn, market_code, None)

    async def sale(self, sale_id: str) -> Sale:
        async with self._db.reading() as conn:
            return await _sale(conn, sale_id)

    async def sales_starting(self, after: datetime, until: datetime) -> list[Sale]:
        """The sales of every market that start after `after` and by `until`, soonest first
        (not those ended before they started)."""
        async with self._db.reading() as conn:
            heads = (
                await conn.execute(
                    select(sales)
                    .where(
                        sales.c.starts_at > after,
                        sales.c.starts_at <= until,
                        sales.c.ends_at.is_(None) | (sales.c.ends_at > sales.c.starts_at),
                    )
                    .order_by(sales.c.starts_at, sales.c.id)
                )
            ).all()
            return await _with_prices(conn, heads)

    # --- quotes ------------------------------------------------------------------------------

    async def quote(self, market_code: str, lines: list[tuple[str, int]]) -> Quote:
        """Lines priced in the market with their taxes; PriceMissing (409) for an unpriced SKU."""
        where, unit_prices, regular, _ = await self._priced(
            None, [sku for sku, _ in lines], market_code
        )
        return domain.quote(where, lines, unit_prices, regular)

    @staticmethod
    def discounted(quote: Quote, discounts: Mapping[str, int]) -> Quote:
        """The quote with these minor units (by SKU) taken off its lines, taxes worked out
        again on what is left: how promotions' discounts reach a price."""
        return domain.discounted(quote, discounts)

    async def quote_batch(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, list[tuple[str, int]]]]
    ) -> list[Quote | ColonnadeError]:
        """A quote per (market, lines), as `quote` gives it, on the caller's connection: one
        price query per market among them, however many carts."""
        priced: dict[
            str, tuple[Market, dict[str, Money], dict[str, Money], datetime | None] | ColonnadeError
        ] = {}
        for code in sorted({code for code, _ in wanted}):
            skus = {sku for market, lines in wanted if market == code for sku, _ in lines}
            try:
                priced[code] = await self._priced(conn, skus, code)
            except ColonnadeError as refused:
                priced[code] = refused
        answers: list[Quote | ColonnadeError] = []
        for code, lines in wanted:
            found = priced[code]
            try:
                if isinstance(found, ColonnadeError):
                    raise found
                answers.append(domain.quote(found[0], lines, found[1], found[2]))
            except ColonnadeError as refused:
                answers.append(refused)
        return answers

    async def _priced(
        self,
        conn: AsyncConnection | None,
        skus: Iterable[str],
        market_code: str,
        at: datetime | None = None,
    ) -> tuple[Market, dict[str, Money], dict[str, Money], datetime | None]:
        """The market, the SKUs' prices in it now (or at `at`), the prices before a sale of
        those a running sale lowers, and when a sale of these SKUs next starts or ends: in
        two queries (one while the market is kept), on `conn` or, without one, each on a
        connection of its own."""
        if conn is None:
            where, fx = await self._markets.load_once(
                market_code, lambda: self._read_market(market_code)
            )
        else:
            where, fx = self._markets.get(market_code) or await self._market_and_rate(
                conn, market_code
            )
        wanted = sorted(set(skus))
        if not wanted:
            return where, {}, {}, None
        now = self._clock.now() if at is None else at
        by_sku: dict[str, dict[str, Money]] = defaultdict(dict)
        currencies = sorted({where.currency, self.base_currency})
        arguments = (wanted, currencies, market_code, now)
        rows = await (
            self._db.read(_PRICES, *arguments) if conn is None else read(conn, _PRICES, *arguments)
        )
        heads: dict[str, tuple[int | None, datetime, datetime | None]] = {}
        listed_on_sale: dict[str, dict[str, Money | None]] = defaultdict(dict)
        targets: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        for sku, amount, currency, sale_id, percent_off, starts_at, ends_at, target in rows:
            if sale_id is None:
                by_sku[sku][currency] = Money(int(amount), currency)
                continue
            heads[sale_id] = (
                percent_off,
                stored_time(starts_at),
                None if ends_at is None else stored_time(ends_at),
            )
            if target is not None:
                targets[sale_id] = _target(target)
            else:
                listed_on_sale[sale_id][sku] = (
                    None if amount is None else Money(int(amount), currency)
                )
        on_sale = [
            Sale(
                sale_id,
                "",
                market_code,
                percent,
                start,
                end,
                listed_on_sale.get(sale_id, {}),
                *targets.get(sale_id, _NO_TARGET),
            )
            for sale_id, (percent, start, end) in heads.items()
        ]
        found: dict[str, Money] = {}
        for sku, listed in by_sku.items():
            price = domain.price_in(where.currency, listed, self.base_currency, fx)
            if price is not None:
                found[sku] = price
        if not on_sale:
            return where, found, {}, None
        placed: Mapping[str, Placement] = {}
        if self._placements is not None and any(s.by_placement and s.running(now) for s in on_sale):
            placed = await self._placements(list(found))
        shelf = domain.on_sale(found, on_sale, now, placed)
        return (
            where,
            {sku: p.price for sku, p in shelf.items()},
            {sku: p.compare_at for sku, p in shelf.items() if p.compare_at is not None},
            domain.next_change(on_sale, now),
        )

    async def _market_and_rate(
        self, conn: AsyncConnection, code: str
    ) -> tuple[Market, Decimal | None]:
        """The market and the rate from the base currency into its currency, read and kept."""
        rate_to_market = and_(
            fx_rates.c.base_currency == self.base_currency,
            fx_rates.c.quote_currency == markets.c.currency,
        )
        row = (
            await conn.execute(
                select(markets, fx_rates.c.rate)
                .select_from(markets.outerjoin(fx_rates, rate_to_market))
                .where(markets.c.code == code)
            )
        ).first()
        if row is None:
            raise await _unknown_market(conn, code)
        found = (_market(row), Decimal(row.rate) if row.rate is not None else None)
        self._markets.put(code, found)
        return found


# --- helpers ------------------------------------------------------------------------------


async def _sales_of(
    conn: AsyncConnection, market_code: str | None, live_at: datetime | None
) -> list[Sale]:
    """The sales of a market (of every market with None), with their SKUs; with `live_at`,
    only those that have not ended by then."""
    query = select(sales).order_by(sales.c.starts_at.desc(), sales.c.id)
    if market_code is not None:
        query = query.where(sales.c.market == market_code)
    if live_at is not None:
        query = query.where(sales.c.ends_at.is_(None) | (sales.c.ends_at > live_at))
    heads = (await conn.execute(query)).all()
    return await _with_prices(conn, heads)


async def _sale(conn: AsyncConnection, sale_id: str) -> Sale:
    heads = (await conn.execute(select(sales).where(sales.c.id == sale_id))).all()
    if not heads:
        raise SaleNotFound(sale_id)
    [found] = await _with_prices(conn, heads)
    return found


async def _with_prices(conn: AsyncConnection, heads: Sequence[Row[Any]]) -> list[Sale]:
    if not heads:
        return []
    listed: dict[str, dict[str, Money | None]] = defaultdict(dict)
    currency = {h.id: h.currency for h in heads}
    rows = await conn.execute(
        select(sale_prices.c.sale_id, sale_prices.c.sku, sale_prices.c.amount)
        .where(sale_prices.c.sale_id.in_(list(currency)))
        .order_by(sale_prices.c.sale_id, sale_prices.c.sku)
    )
    for sale_id, sku, amount in rows:
        listed[sale_id][sku] = None if amount is None else Money(int(amount), currency[sale_id])
    return [
        Sale(
            id=h.id,
            name=h.name,
            market=h.market,
            percent_off=h.percent_off,
            starts_at=h.starts_at,
            ends_at=h.ends_at,
            prices=listed[h.id],
            products=products,
            categories=categories,
        )
        for h in heads
        for products, categories in [_target(h.target)]
    ]


_NO_TARGET: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


def _target(stored: Any) -> tuple[frozenset[str], frozenset[str]]:
    """A sale's stored target as (products, categories). The drivers give the JSON's text,
    SQLAlchemy its value; None for a sale of listed SKUs only."""
    if stored is None:
        return _NO_TARGET
    found = orjson.loads(stored) if isinstance(stored, str | bytes) else stored
    return frozenset(found.get("products", ())), frozenset(found.get("categories", ()))


def _locale_tag(locale: str) -> str:
    """The locale in its canonical tag form (de-DE), or UnknownLocale."""
    if not domain.LOCALE_SHAPE.fullmatch(locale):
        raise UnknownLocale(locale)
    try:
        parsed = Locale.parse(locale, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        raise UnknownLocale(locale) from None
    return str(parsed).replace("_", "-")


def _market(row: Row[Any]) -> Market:
    return Market(
        code=row.code,
        name=row.name,
        currency=row.currency,
        locale=row.locale,
        tax_inclusive=bool(row.tax_inclusive),
        tax_rate=Decimal(row.tax_rate),
        time_zone=row.time_zone,
    )


async def _unknown_market(conn: AsyncConnection, code: str) -> UnknownMarket:
    known = (await conn.execute(select(markets.c.code).order_by(markets.c.code))).scalars().all()
    return UnknownMarket(code, list(known))


def _insert(uow: UnitOfWork, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if uow.connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
