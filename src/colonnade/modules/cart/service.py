"""Cart's public use cases: open a cart, change its lines, show it priced, hand it to checkout.

Each change reads the cart, prices the lines it would have (so an unpriced SKU changes
nothing), then writes in one short transaction that first claims the cart row: the claim
bumps the version and locks the row, so concurrent changes to one cart queue up and each
re-applies its rule to the lines it finds. Pricing is never called inside a transaction.

A cart opened by a signed-in customer is theirs: every method takes the calling customer's
id (None for a guest), and to any other caller such a cart does not exist. Carts hold no
personal data besides that link, which `forget_customer` removes.

A cart may hold one discount code. It is weighed again each time the cart is priced: a code
that stops applying (it ended, ran out, the subtotal fell below its minimum) stays on the
cart, shown as not applied with its reason, and checkout refuses the cart until the shopper
removes it, so nobody pays a price other than the one they saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import case, select, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.batching import Batcher, Exclude, Submitted
from colonnade.kernel.bulk import insert_rows, update_rows
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError, NotFound
from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import CARTS_CREATED
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork, read
from colonnade.modules.cart import domain, postgres
from colonnade.modules.cart.domain import (
    CartChanged,
    CartClosed,
    CartFull,
    CartNotFound,
    CartStatus,
    InvalidQuantity,
    InvalidSku,
    Limits,
    Line,
    LineNotFound,
    Lines,
    UnknownSku,
)
from colonnade.modules.cart.events import CartExpired, CartUpdated
from colonnade.modules.cart.schema import carts
from colonnade.modules.cart.schema import lines as cart_lines
from colonnade.modules.promotions.service import Basket, Offer

__all__ = [
    "CartChanged",
    "CartClosed",
    "CartFull",
    "CartLineView",
    "CartNotFound",
    "CartPromotion",
    "CartService",
    "CartSnapshot",
    "CartStatus",
    "CartView",
    "InvalidQuantity",
    "InvalidSku",
    "LineNotFound",
    "MarketLike",
    "PriceQuoter",
    "PromotionNotOnCart",
    "PromotionOffers",
    "QuoteLike",
    "SkuCatalog",
    "UnknownSku",
]


# --- ports: what the cart needs from pricing and the catalog --------------------------------


class MarketLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def tax_inclusive(self) -> bool: ...


class QuotedLineLike(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> Money: ...
    @property
    def line_total(self) -> Money: ...
    @property
    def tax(self) -> Money: ...
    @property
    def compare_at(self) -> Money | None: ...


class QuoteLike(Protocol):
    @property
    def lines(self) -> Sequence[QuotedLineLike]: ...
    @property
    def subtotal(self) -> Money: ...
    @property
    def tax(self) -> Money: ...
    @property
    def total(self) -> Money: ...


class PriceQuoter(Protocol):
    async def market(self, code: str) -> MarketLike:
        """The market; raises a 422 error itself when there is none with this code."""
        ...

    async def quote(self, market_code: str, lines: list[tuple[str, int]]) -> QuoteLike:
        """Prices for the lines; raises a 409 `price_missing` error for an unpriced SKU."""
        ...

    async def quote_batch(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, list[tuple[str, int]]]]
    ) -> Sequence[QuoteLike | ColonnadeError]:
        """A quote (or its refusal) per (market, lines), on the caller's connection."""
        ...

    def discounted(self, quote: Any, discounts: dict[str, int]) -> QuoteLike:
        """The quote with these minor units (by SKU) off its lines, taxed again."""
        ...


class PromotionOffers(Protocol):
    async def offers(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str | None, Basket]]
    ) -> Sequence[Offer]:
        """What the promotions take off each (code entered or None, basket) now, and why
        the code does not apply, if it does not."""
        ...


class SkuCatalog(Protocol):
    async def sku_exists(self, sku: str) -> bool: ...


class PromotionNotOnCart(NotFound):
    code = "promotion_not_on_cart"

    def __init__(self, cart_id: str, code: str) -> None:
        super().__init__(
            f"cart '{cart_id}' holds no promotion code {code}", cart_id=cart_id, promotion_code=code
        )


# --- what callers get back -----------------------------------------------------------------


@dataclass(frozen=True)
class CartLineView:
    sku: str
    quantity: int
    unit_price: Money
    # What the line costs, its discount taken off.
    line_total: Money
    tax: Money
    discount: Money
    # The unit's price before a running sale lowered it; None when no sale does.
    compare_at: Money | None = None


@dataclass(frozen=True)
class CartPromotion:
    """The code the cart holds: applied, or not and why (`refusal`)."""

    code: str
    refusal: ColonnadeError | None

    @property
    def applied(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class CartView:
    id: str
    market: str
    currency: str
    status: CartStatus
    lines: tuple[CartLineView, ...]
    subtotal: Money
    tax: Money
    total: Money
    tax_inclusive: bool
    discount: Money
    promotion: CartPromotion | None = None
    # Which promotions take something off the cart, and which do not and why.
    offer: Offer | None = None


@dataclass(frozen=True)
class CartSnapshot:
    """What checkout needs: the lines as they are, and the version to close against."""

    id: str
    market: str
    currency: str
    lines: tuple[tuple[str, int], ...]
    version: int
    status: CartStatus
    # The customer the cart belongs to; None for a guest's cart.
    customer_id: str | None = None
    promotion_code: str | None = None


@dataclass(frozen=True)
class _LineChange:
    cart_id: str
    customer_id: str | None
    change: Callable[[Lines], Lines]
    # A discount code the change puts on the cart, refused with the code's own reason when it
    # does not apply; None: the cart keeps the code it holds.
    code: str | None = None


@dataclass(frozen=True)
class _Cart:
    id: str
    market: str
    currency: str
    tax_inclusive: bool
    status: CartStatus
    version: int
    lines: Lines
    customer_id: str | None = None
    promotion_code: str | None = None


class CartService:
    def __init__(
        self,
        db: Database,
        *,
        pricing: PriceQuoter,
        catalog: SkuCatalog,
        clock: Clock,
        promotions: PromotionOffers | None = None,
        idle_ttl: timedelta = timedelta(hours=24),
        max_quantity: int = 99,
        max_lines: int = 100,
    ) -> None:
        if idle_ttl <= timedelta(0):
            raise ValueError(f"idle_ttl must be positive, got {idle_ttl}")
        self._db = db
        self._pricing = pricing
        self._catalog = catalog
        self._clock = clock
        self._promotions = promotions
        self._idle_ttl = idle_ttl
        self._limits = Limits(max_quantity=max_quantity, max_lines=max_lines)
        # Carts opened, and lines changed, at the same moment go to the database together.
        self._opening = Batcher[dict[str, Any], None]("cart.open", self._open_batch)
        self._changing = Batcher[_LineChange, CartView]("cart.change", self._change_batch)

    async def create(self, market: str, customer_id: str | None = None) -> CartView:
        customer_id = domain.valid_customer_id(customer_id)
        found = await self._pricing.market(market)
        now = self._clock.now()
        cart = _Cart(
            id=new_id(),
            market=found.code,
            currency=found.currency,
            tax_inclusive=found.tax_inclusive,
            status=CartStatus.OPEN,
            version=1,
            lines=(),
        )
        await self._opening.submit(
            {
                "id": cart.id,
                "market": cart.market,
                "currency": cart.currency,
                "tax_inclusive": cart.tax_inclusive,
                "status": cart.status.value,
                "customer_id": customer_id,
                "created_at": now,
                "updated_at": now,
                "version": cart.version,
            }
        )
        CARTS_CREATED.inc()
        return _view(cart, None)

    async def cart(self, cart_id: str, customer_id: str | None = None) -> CartView:
        cart = await self._load(cart_id, customer_id)
        domain.ensure_visible(cart_id, cart.status)
        return await self._priced(cart)

    async def apply_promotion(
        self, cart_id: str, code: str, customer_id: str | None = None
    ) -> CartView:
        """Put a discount code on the cart (in place of any it held) if it applies to the
        cart now; its own refusal (unknown, not started, ended, used up...) otherwise, and the
        cart stays as it was."""
        # A change like a line's, batched with them: entering the code is one more step of
        # the purchase a Black Friday shopper makes.
        return await self._changing.submit(
            _LineChange(cart_id, customer_id, lambda lines: lines, code=code)
        )

    async def remove_promotion(
        self, cart_id: str, code: str, customer_id: str | None = None
    ) -> CartView:
        """Take the discount code off the cart."""
        cart = await self._load(cart_id, customer_id)
        domain.ensure_open(cart_id, cart.status)
        if cart.promotion_code is None or cart.promotion_code != code.upper():
            raise PromotionNotOnCart(cart_id, code)
        await self._set_code(cart, None)
        return await self._priced(replace(cart, promotion_code=None))

    async def _set_code(self, cart: _Cart, code: str | None) -> None:
        now = self._clock.now()
        async with self._db.transaction() as uow:
            changed = await uow.execute(
                update(carts)
                .where(
                    carts.c.id == cart.id,
                    carts.c.status == CartStatus.OPEN.value,
                    carts.c.updated_at >= now - self._idle_ttl,
                )
                .values(promotion_code=code, version=carts.c.version + 1, updated_at=now)
            )
            if changed.rowcount != 1:
                raise await _unclaimable(uow, cart.id, cart.customer_id)
            await uow.commit()

    async def _priced(self, cart: _Cart) -> CartView:
        quote = await self._quote(cart.market, cart.lines)
        if self._promotions is None:
            return _view(cart, quote)
        return _view(cart, *self._discount(quote, await self._offer(cart, quote)))

    async def _offer(self, cart: _Cart, quote: QuoteLike | None) -> Offer:
        """What the promotions take off the cart now, and why its code does not, if not."""
        async with self._db.reading() as conn:
            [offer] = await self._offers(conn, [(cart, quote, cart.promotion_code)])
        return offer

    async def _offers(
        self,
        conn: AsyncConnection,
        wanted: Sequence[tuple[_Cart | _Claimed, QuoteLike | None, str | None]],
    ) -> Sequence[Offer]:
        if self._promotions is None:
            raise RuntimeError("this shop's carts take no promotion codes")
        return await self._promotions.offers(
            conn,
            [
                (
                    code,
                    Basket.of(
                        cart.market,
                        cart.currency,
                        () if quote is None else quote.lines,
                        cart.customer_id,
                    ),
                )
                for cart, quote, code in wanted
            ],
        )

    def _discount(self, quote: QuoteLike | None, offer: Offer) -> tuple[QuoteLike | None, Offer]:
        """The quote with the offer's discount taken off, and the offer."""
        if quote is None or not offer.lines:
            return quote, offer
        return self._pricing.discounted(quote, offer.lines), offer

    async def add_line(
        self, cart_id: str, sku: str, quantity: int, customer_id: str | None = None
    ) -> CartView:
        domain.valid_sku(sku)
        domain.valid_quantity(quantity, self._limits)
        if not await self._catalog.sku_exists(sku):
            raise UnknownSku(sku)
        return await self._change(
            cart_id,
            customer_id,
            lambda lines: domain.with_added(lines, sku, quantity, self._limits),
        )

    async def set_quantity(
        self, cart_id: str, sku: str, quantity: int, customer_id: str | None = None
    ) -> CartView:
        """Set a line to exactly `quantity`; 0 removes it."""
        domain.valid_quantity(quantity, self._limits, allow_zero=True)
        return await self._change(
            cart_id,
            customer_id,
            lambda lines: domain.with_quantity(cart_id, lines, sku, quantity, self._limits),
        )

    async def remove_line(self, cart_id: str, sku: str, customer_id: str | None = None) -> CartView:
        return await self._change(
            cart_id, customer_id, lambda lines: domain.without(cart_id, lines, sku)
        )

    async def close(self, cart_id: str, expected_version: int | None = None) -> None:
        """Mark the cart checked out. Closing a closed cart is harmless.

        With `expected_version`, a cart changed since checkout took its snapshot is refused
        (CartChanged), so an order never stands for lines other than those it was placed for.
        """
        conditions = [carts.c.id == cart_id, carts.c.status != CartStatus.CHECKED_OUT.value]
        if expected_version is not None:
            conditions.append(carts.c.version == expected_version)
        async with self._db.transaction() as uow:
            closed = await uow.execute(
                update(carts)
                .where(*conditions)
                .values(
                    status=CartStatus.CHECKED_OUT.value,
                    version=carts.c.version + 1,
                    updated_at=self._clock.now(),
                )
            )
            if closed.rowcount == 1:
                await uow.commit()
                return
            row = (
                await uow.execute(
                    select(carts.c.status, carts.c.version).where(carts.c.id == cart_id)
                )
            ).one_or_none()
        if row is None:
            raise CartNotFound(cart_id)
        if row.status == CartStatus.CHECKED_OUT.value:
            return
        raise CartChanged(cart_id, expected_version or 0, row.version)

    async def snapshot(self, cart_id: str, customer_id: str | None = None) -> CartSnapshot:
        return _snapshot_of(await self._load(cart_id, customer_id))

    async def snapshot_batch(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, str | None]]
    ) -> list[CartSnapshot | CartNotFound]:
        """Each (cart id, customer id)'s cart as `snapshot` reads it, all in one query on the
        caller's connection."""
        return [
            found if isinstance(found, CartNotFound) else _snapshot_of(found)
            for found in await self._load_many(conn, wanted)
        ]

    async def close_batch(self, uow: UnitOfWork, cart_ids: Sequence[str]) -> None:
        """Mark these carts checked out in the caller's transaction, one statement for all;
        a cart closed already stays as it is."""
        if not cart_ids:
            return
        if uow.on_postgresql:
            await uow.fetch(
                postgres.CLOSE,
                sorted(set(cart_ids)),
                CartStatus.CHECKED_OUT.value,
                self._clock.now(),
            )
            return
        await uow.execute(
            update(carts)
            .where(
                carts.c.id.in_(sorted(set(cart_ids))),
                carts.c.status != CartStatus.CHECKED_OUT.value,
            )
            .values(
                status=CartStatus.CHECKED_OUT.value,
                version=carts.c.version + 1,
                updated_at=self._clock.now(),
            )
        )

    async def forget_customer(self, customer_id: str) -> int:
        """Cut the customer's carts loose from them (erasure); returns how many carts.

        An open cart is expired as well, so nobody else can carry on with it as a guest;
        closed carts stay, ownerless, for what checkout already did with them. Repeated, it
        finds nothing.
        """
        async with self._db.transaction() as uow:
            forgotten = await uow.execute(
                update(carts)
                .where(carts.c.customer_id == customer_id)
                .values(
                    customer_id=None,
                    status=case(
                        (carts.c.status == CartStatus.OPEN.value, CartStatus.EXPIRED.value),
                        else_=carts.c.status,
                    ),
                    version=carts.c.version + 1,
                )
            )
            await uow.commit()
        return int(forgotten.rowcount)

    async def expire_idle(self) -> int:
        """Mark every open cart idle longer than the idle time as expired; returns how many."""
        cutoff = self._clock.now() - self._idle_ttl
        async with self._db.transaction() as uow:
            # SKIP LOCKED: a cart being changed right now is not idle, and two sweeps never wait
            # on each other; locking in id order keeps sweeps from deadlocking.
            due = (
                await uow.execute(
                    select(carts.c.id, carts.c.market)
                    .where(carts.c.status == CartStatus.OPEN.value, carts.c.updated_at < cutoff)
                    .order_by(carts.c.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not due:
                return 0
            # updated_at stays the last shopper activity, which is when the cart was abandoned.
            await uow.execute(
                update(carts)
                .where(carts.c.id.in_([row.id for row in due]))
                .values(status=CartStatus.EXPIRED.value, version=carts.c.version + 1)
            )
            for row in due:
                uow.record(CartExpired(cart_id=row.id, market=row.market))
            await uow.commit()
        return len(due)

    # --- the one way lines change ---------------------------------------------------------

    async def _change(
        self, cart_id: str, customer_id: str | None, change: Callable[[Lines], Lines]
    ) -> CartView:
        return await self._changing.submit(_LineChange(cart_id, customer_id, change))

    async def _open_batch(self, batch: Sequence[Submitted[dict[str, Any]]]) -> list[None]:
        async with self._db.transaction() as uow:
            await insert_rows(uow, carts, [s.request for s in batch])
            await uow.commit()
        return [None for _ in batch]

    async def _change_batch(self, batch: Sequence[Submitted[_LineChange]]) -> list[CartView]:
        """Change the lines of the carts in the batch in one transaction, each change as if
        alone and in arrival order (two changes of one cart apply one after the other).

        A change that breaks a rule (limits), finds its cart closed or prices a SKU the
        market has no price for is refused alone: it is taken out of the batch (Exclude),
        which runs again without it, so its refusal leaves nothing written."""
        changes = [s.request for s in batch]
        per_cart = Counter(c.cart_id for c in changes)
        now = self._clock.now()
        async with self._db.transaction() as uow:
            claimed = await self._claim_batch(uow, per_cart, now)
            refused: dict[int, Exception] = {}
            before = await _lines_of(uow, list(claimed))
            current = dict(before)
            version = {cart_id: row.version - per_cart[cart_id] for cart_id, row in claimed.items()}
            position: dict[tuple[str, str], int] = {}
            after: dict[int, tuple[Lines, int]] = {}
            started: set[int] = set()
            for i, c in enumerate(changes):
                try:
                    row = claimed.get(c.cart_id)
                    if row is None:
                        raise await _unclaimable(uow, c.cart_id, c.customer_id)
                    domain.ensure_reachable(c.cart_id, row.customer_id, c.customer_id)
                    lines = c.change(current[c.cart_id])
                except ColonnadeError as error:
                    refused[i] = error
                    continue
                version[c.cart_id] += 1
                held = {ln.sku for ln in current[c.cart_id]}
                for ln in lines:
                    if ln.sku not in held:
                        position[(c.cart_id, ln.sku)] = version[c.cart_id]
                if lines and not current[c.cart_id]:
                    started.add(i)
                current[c.cart_id] = lines
                after[i] = (lines, version[c.cart_id])
            if refused:
                raise Exclude(refused)
            priced = [i for i in after if after[i][0]]
            quotes = await self._pricing.quote_batch(
                uow.connection,
                [(claimed[changes[i].cart_id].market, _pairs(after[i][0])) for i in priced],
            )
            quote_of: dict[int, QuoteLike] = {}
            for i, quote in zip(priced, quotes, strict=True):
                if isinstance(quote, ColonnadeError):
                    refused[i] = quote
                else:
                    quote_of[i] = quote
            if refused:
                raise Exclude(refused)
            # The code each change leaves on its cart, in arrival order.
            holding = {cart_id: row.promotion_code for cart_id, row in claimed.items()}
            code_after: dict[int, str | None] = {}
            for i in after:
                c = changes[i]
                if c.code is not None:
                    holding[c.cart_id] = c.code.upper()
                code_after[i] = holding[c.cart_id]
            weighed = list(code_after) if self._promotions is not None else []
            offered = (
                await self._offers(
                    uow.connection,
                    [
                        (claimed[changes[i].cart_id], quote_of.get(i), code_after[i])
                        for i in weighed
                    ],
                )
                if weighed
                else []
            )
            offer_of = dict(zip(weighed, offered, strict=True))
            for i, offer in offer_of.items():
                if changes[i].code is not None and offer.refusal is not None:
                    refused[i] = offer.refusal
            if refused:
                raise Exclude(refused)
            entered = {c.cart_id: c.code.upper() for c in changes if c.code is not None}
            await _write_batch(uow, before, current, position, now)
            if entered:
                await update_rows(
                    uow,
                    carts,
                    [
                        {"id": cart_id, "promotion_code": code}
                        for cart_id, code in sorted(entered.items())
                    ],
                )
            for i, (lines, _) in after.items():
                if changes[i].code is not None:
                    continue  # the lines did not change
                batch[i].context.run(
                    uow.record,
                    CartUpdated(
                        cart_id=changes[i].cart_id,
                        market=claimed[changes[i].cart_id].market,
                        lines=[{"sku": ln.sku, "quantity": ln.quantity} for ln in lines],
                        updated_at=now.isoformat(),
                        started=i in started,
                    ),
                )
            await uow.commit()
        views: list[CartView] = []
        for i, c in enumerate(changes):
            row = claimed[c.cart_id]
            lines, at_version = after[i]
            cart = _Cart(
                id=c.cart_id,
                market=row.market,
                currency=row.currency,
                tax_inclusive=row.tax_inclusive,
                status=CartStatus.OPEN,
                version=at_version,
                lines=lines,
                customer_id=row.customer_id,
                promotion_code=code_after.get(i),
            )
            if i in offer_of:
                views.append(_view(cart, *self._discount(quote_of.get(i), offer_of[i])))
            else:
                views.append(_view(cart, quote_of.get(i)))
        return views

    async def _claim_batch(
        self, uow: UnitOfWork, per_cart: Counter[str], now: datetime
    ) -> dict[str, _Claimed]:
        """Bump each open, live cart's version once per change it gets and lock its row;
        carts that are not open (closed, expired, gone) are left out."""
        if uow.on_postgresql:
            ids = sorted(per_cart)
            found = await uow.fetch(
                postgres.CLAIM,
                ids,
                [per_cart[cart_id] for cart_id in ids],
                now,
                CartStatus.OPEN.value,
                now - self._idle_ttl,
            )
            return {row[0]: _Claimed(*row) for row in found}
        rows = await uow.execute(
            update(carts)
            .where(
                carts.c.id.in_(sorted(per_cart)),
                carts.c.status == CartStatus.OPEN.value,
                carts.c.updated_at >= now - self._idle_ttl,
            )
            .values(
                version=carts.c.version + case(dict(per_cart), value=carts.c.id, else_=1),
                updated_at=now,
            )
            .returning(
                carts.c.id,
                carts.c.market,
                carts.c.currency,
                carts.c.tax_inclusive,
                carts.c.version,
                carts.c.customer_id,
                carts.c.promotion_code,
            )
        )
        return {row.id: _Claimed(*row) for row in rows}

    async def _load(self, cart_id: str, customer_id: str | None) -> _Cart:
        """The cart and its lines in one query; CartNotFound when there is no such cart, or
        when it is another customer's."""
        async with self._db.reading() as conn:
            [found] = await self._load_many(conn, [(cart_id, customer_id)])
        if isinstance(found, CartNotFound):
            raise found
        return found

    async def _load_many(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, str | None]]
    ) -> list[_Cart | CartNotFound]:
        ids = sorted({cart_id for cart_id, _ in wanted})
        rows: Any
        if conn.dialect.name == "postgresql":
            rows = await read(conn, postgres.LOAD, ids)
        else:
            rows = await conn.execute(
                select(
                    carts.c.id,
                    carts.c.market,
                    carts.c.currency,
                    carts.c.tax_inclusive,
                    carts.c.status,
                    carts.c.updated_at,
                    carts.c.version,
                    carts.c.customer_id,
                    carts.c.promotion_code,
                    cart_lines.c.sku,
                    cart_lines.c.quantity,
                )
                .select_from(carts.outerjoin(cart_lines, cart_lines.c.cart_id == carts.c.id))
                .where(carts.c.id.in_(ids))
                .order_by(carts.c.id, cart_lines.c.position)
            )
        by_cart: dict[str, list[_CartRow]] = {}
        for row in rows:
            by_cart.setdefault(row[0], []).append(_CartRow(*row))
        now = self._clock.now()
        found: list[_Cart | CartNotFound] = []
        for cart_id, customer_id in wanted:
            cart_rows = by_cart.get(cart_id, [])
            try:
                if not cart_rows:
                    raise CartNotFound(cart_id)
                head = cart_rows[0]
                domain.ensure_reachable(cart_id, head.customer_id, customer_id)
            except CartNotFound as missing:
                found.append(missing)
                continue
            found.append(
                _Cart(
                    id=head.id,
                    market=head.market,
                    currency=head.currency,
                    tax_inclusive=head.tax_inclusive,
                    status=domain.effective_status(
                        CartStatus(head.status), head.updated_at, now, self._idle_ttl
                    ),
                    version=head.version,
                    lines=tuple(
                        Line(r.sku, r.quantity)
                        for r in cart_rows
                        if r.sku is not None and r.quantity is not None
                    ),
                    customer_id=head.customer_id,
                    promotion_code=head.promotion_code,
                )
            )
        return found

    async def _quote(self, market: str, lines: Lines) -> QuoteLike | None:
        if not lines:
            return None
        return await self._pricing.quote(market, [(ln.sku, ln.quantity) for ln in lines])


def _pairs(lines: Lines) -> list[tuple[str, int]]:
    return [(ln.sku, ln.quantity) for ln in lines]


async def _unclaimable(uow: UnitOfWork, cart_id: str, customer_id: str | None) -> ColonnadeError:
    """Why a cart could not be claimed: it closed, expired or is not the caller's."""
    found = (
        await uow.execute(select(carts.c.status, carts.c.customer_id).where(carts.c.id == cart_id))
    ).one_or_none()
    if found is not None and found.status == CartStatus.CHECKED_OUT.value:
        domain.ensure_reachable(cart_id, found.customer_id, customer_id)
        return CartClosed(cart_id)
    return CartNotFound(cart_id)


async def _lines_of(uow: UnitOfWork, cart_ids: list[str]) -> dict[str, Lines]:
    rows: Any
    if uow.on_postgresql:
        rows = await uow.fetch(postgres.LINES_OF, cart_ids)
    else:
        rows = await uow.execute(
            select(cart_lines.c.cart_id, cart_lines.c.sku, cart_lines.c.quantity)
            .where(cart_lines.c.cart_id.in_(cart_ids))
            .order_by(cart_lines.c.cart_id, cart_lines.c.position)
        )
    found: dict[str, list[Line]] = {cart_id: [] for cart_id in cart_ids}
    for cart_id, sku, quantity in rows:
        found[cart_id].append(Line(sku, quantity))
    return {cart_id: tuple(lines) for cart_id, lines in found.items()}


async def _write_batch(
    uow: UnitOfWork,
    before: dict[str, Lines],
    after: dict[str, Lines],
    position: dict[tuple[str, str], int],
    now: datetime,
) -> None:
    """The lines of every cart in the batch as they are now: one upsert, one delete."""
    upserts: list[dict[str, Any]] = []
    deletes: list[tuple[str, str]] = []
    for cart_id, lines in after.items():
        changed, gone = domain.changes(before[cart_id], lines)
        upserts.extend(
            {
                "cart_id": cart_id,
                "sku": ln.sku,
                "quantity": ln.quantity,
                "added_at": now,
                "position": position.get((cart_id, ln.sku), 0),
            }
            for ln in changed
        )
        deletes.extend((cart_id, sku) for sku in gone)
    if uow.on_postgresql:
        if upserts:
            await uow.fetch(
                postgres.WRITE_LINES,
                *(
                    [u[name] for u in upserts]
                    for name in ("cart_id", "sku", "quantity", "added_at", "position")
                ),
            )
        if deletes:
            await uow.fetch(
                postgres.DROP_LINES,
                [cart_id for cart_id, _ in deletes],
                [sku for _, sku in deletes],
            )
        return
    if upserts:
        insert = sqlite.insert(cart_lines)  # PostgreSQL wrote its lines above
        # A line keeps when it was first added, so it keeps its place in the cart.
        await uow.execute(
            insert.on_conflict_do_update(
                index_elements=[cart_lines.c.cart_id, cart_lines.c.sku],
                set_={"quantity": insert.excluded.quantity},
            ),
            upserts,
        )
    if deletes:
        await uow.execute(
            cart_lines.delete().where(tuple_(cart_lines.c.cart_id, cart_lines.c.sku).in_(deletes))
        )


def _snapshot_of(cart: _Cart) -> CartSnapshot:
    return CartSnapshot(
        id=cart.id,
        market=cart.market,
        currency=cart.currency,
        lines=tuple((line.sku, line.quantity) for line in cart.lines),
        version=cart.version,
        status=cart.status,
        customer_id=cart.customer_id,
        promotion_code=cart.promotion_code,
    )


class _CartRow(NamedTuple):
    """A cart and one of its lines (none: sku and quantity are None), as `_load_many`
    reads them."""

    id: str
    market: str
    currency: str
    tax_inclusive: bool
    status: str
    updated_at: datetime
    version: int
    customer_id: str | None
    promotion_code: str | None
    sku: str | None
    quantity: int | None


class _Claimed(NamedTuple):
    """A cart's row as a batch of changes claimed it."""

    id: str
    market: str
    currency: str
    tax_inclusive: bool
    version: int
    customer_id: str | None
    promotion_code: str | None


def _view(cart: _Cart, quote: QuoteLike | None, offer: Offer | None = None) -> CartView:
    """The cart as priced; with what promotions take off it, and whether its code does."""
    promotion = None
    if cart.promotion_code is not None and offer is not None:
        promotion = CartPromotion(code=cart.promotion_code, refusal=_code_refusal(cart, offer))
    off = offer.lines if offer is not None else {}
    zero = Money.zero(cart.currency)
    if quote is None:
        return CartView(
            id=cart.id,
            market=cart.market,
            currency=cart.currency,
            status=cart.status,
            lines=(),
            subtotal=zero,
            tax=zero,
            total=zero,
            tax_inclusive=cart.tax_inclusive,
            discount=zero,
            promotion=promotion,
            offer=offer,
        )
    priced = {line.sku: line for line in quote.lines}
    return CartView(
        id=cart.id,
        market=cart.market,
        currency=quote.total.currency,
        status=cart.status,
        lines=tuple(
            CartLineView(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=priced[line.sku].unit_price,
                line_total=priced[line.sku].line_total,
                tax=priced[line.sku].tax,
                discount=Money(off.get(line.sku, 0), cart.currency),
                compare_at=priced[line.sku].compare_at,
            )
            for line in cart.lines
        ),
        subtotal=quote.subtotal,
        tax=quote.tax,
        total=quote.total,
        tax_inclusive=cart.tax_inclusive,
        discount=Money(sum(off.values()), cart.currency),
        promotion=promotion,
        offer=offer,
    )


def _code_refusal(cart: _Cart, offer: Offer) -> ColonnadeError | None:
    """Why the cart's code takes nothing off: refused, or outdone by promotions it does
    not combine with; None when it applies."""
    if offer.refusal is not None:
        return offer.refusal
    code = cart.promotion_code
    if any(code in (t.code, t.single_code) for t in offer.taken):
        return None
    return next((p.reason for p in offer.passed if p.code == code), None)
