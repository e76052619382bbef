"""Orders' public use cases: place an order, show it, and move it along its life.

Each method is one short transaction. A status change is a conditional UPDATE on the status
(and amounts) it was decided from, so of two staff clicking at once only one succeeds; the
other re-reads the order and gets the rule's precise refusal. Orders only record: what a
cancel means for stock and money is the checkout's to act on, through the events.

The buyer's e-mail and address are kept encrypted and never leave in events; anonymizing an
order (erasure, retention) removes them and keeps what the books need.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from colonnade.kernel.bulk import insert_rows
from colonnade.kernel.clock import Clock
from colonnade.kernel.crypto import Keyring, count_stale, reencrypt
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput
from colonnade.kernel.events import Event
from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import ORDERS_PLACED, count_revenue
from colonnade.kernel.money import Money, currency_code
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.orders import domain
from colonnade.modules.orders.domain import (
    IllegalTransition,
    InvalidOrder,
    InvalidRefundLines,
    LineNotOnOrder,
    LineRefundKeyReused,
    OrderLine,
    OrderNotFound,
    OrderState,
    OrderStatus,
    PaymentMismatch,
    RefundExceedsLine,
    RefundExceedsPayment,
)
from colonnade.modules.orders.events import (
    OrderCancelled,
    OrderDelivered,
    OrderFulfilled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
)
from colonnade.modules.orders.reading import (
    ADDRESS_CONTEXT,
    EMAIL_CONTEXT,
    EMAIL_INDEX_CONTEXT,
    HistoryEntry,
    Order,
    assemble,
    load,
    load_many,
    order_rows,
    state_of,
)
from colonnade.modules.orders.schema import history, line_refunds, lines, orders

__all__ = [
    "HistoryEntry",
    "IllegalTransition",
    "InvalidOrder",
    "InvalidRefundLines",
    "LineNotOnOrder",
    "LineRefundKeyReused",
    "NewOrder",
    "Order",
    "OrderBusy",
    "OrderLine",
    "OrderNotFound",
    "OrderStatus",
    "OrdersService",
    "Page",
    "PaymentMismatch",
    "PlacedOrder",
    "RefundExceedsLine",
    "RefundExceedsPayment",
]

MAX_PAGE = 100
T = TypeVar("T")


@dataclass(frozen=True)
class NewOrder:
    """An order as the checkout places it, from a quote it has already priced and paid for."""

    checkout_id: str
    email: str
    market: str
    currency: str
    tax_inclusive: bool
    lines: Sequence[OrderLine]
    shipping: Money
    shipping_address: Mapping[str, Any]
    payment_id: str | None = None
    customer_id: str | None = None
    # The total the checkout authorized; placing refuses an order that adds up differently.
    expected_total: Money | None = None


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    # The guest's secret for GET /store/orders/{id}?token=...; None when the order existed.
    access_token: str | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class _Draft:
    """An order about to be written: what the caller gets back, the row, the guest secret."""

    order: Order
    values: dict[str, Any]
    token: str

    def numbered(self, order_id: str, number: str) -> _Draft:
        return replace(self, order=replace(self.order, id=order_id, number=number))

    @property
    def row(self) -> dict[str, Any]:
        return {"id": self.order.id, "number": self.order.number, **self.values}


class OrderBusy(Conflict):
    code = "order_busy"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} is being changed by someone else; try again", order_id=order_id
        )


class OrdersService:
    def __init__(self, db: Database, *, keyring: Keyring, clock: Clock) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock

    # --- placing ----------------------------------------------------------------------------

    async def place(self, new: NewOrder) -> PlacedOrder:
        """Record a new order; placing the same checkout again returns the first order."""
        draft = self._draft(new, self._clock.now())
        async with self._db.transaction() as uow:
            placed = await _insert_order(uow, draft.values)
            if placed is None:
                # Another call placed this checkout first (perhaps this very moment): its order.
                checkout_id = draft.order.checkout_id
                existing = await _for_checkout(uow.connection, checkout_id, self._keyring)
                return PlacedOrder(existing, access_token=None)
            order_id, number = placed
            draft = draft.numbered(order_id, number)
            await uow.execute(lines.insert(), _line_rows(draft.order))
            await uow.execute(history.insert(), _history_rows(draft.order))
            uow.record(_placed_event(draft.order))
            await uow.commit()
        ORDERS_PLACED.inc()
        return PlacedOrder(draft.order, access_token=draft.token)

    async def place_paid_batch(
        self, uow: UnitOfWork, placing: Sequence[tuple[NewOrder, Money]]
    ) -> list[PlacedOrder | ColonnadeError]:
        """Record orders whose whole total was captured already (one charge), paid from the
        start, in the caller's transaction: one statement per table for the whole batch.
        Each order keeps both steps in its history and publishes OrderPlaced and OrderPaid,
        as placing and then marking it paid would."""
        now = self._clock.now()
        answers: list[_Draft | ColonnadeError] = []
        for new, paid in placing:
            try:
                answers.append(self._draft(new, now, paid=paid))
            except ColonnadeError as refused:
                answers.append(refused)
        drafts = [a for a in answers if isinstance(a, _Draft)]
        await _insert_orders(uow, drafts)
        await insert_rows(uow, lines, [r for d in drafts for r in _line_rows(d.order)])
        await insert_rows(uow, history, [r for d in drafts for r in _history_rows(d.order)])
        for d in drafts:
            uow.record(_placed_event(d.order))
            uow.record(_paid_event(d.order))

        def count() -> None:
            ORDERS_PLACED.inc(len(drafts))
            for d in drafts:
                count_revenue(d.order.paid)

        uow.after_commit(count)
        return [
            PlacedOrder(a.order, access_token=a.token) if isinstance(a, _Draft) else a
            for a in answers
        ]

    def _draft(self, new: NewOrder, now: datetime, *, paid: Money | None = None) -> _Draft:
        """The order as it will be written, checked, with its guest secret."""
        checkout_id = domain.valid_text("checkout_id", new.checkout_id, limit=64)
        market = domain.valid_text("market", new.market, limit=16)
        currency = currency_code(new.currency)
        email = domain.valid_email(new.email)
        totals = domain.totals(new.lines, new.shipping, new.tax_inclusive, currency)
        if new.expected_total is not None and new.expected_total != totals.total:
            raise InvalidOrder(
                f"the lines add up to {totals.total.amount} {currency} minor units, not the "
                f"expected {new.expected_total.amount} {new.expected_total.currency}",
                field="expected_total",
            )
        order_id = new_id()
        if paid is not None and paid != totals.total:
            raise PaymentMismatch(order_id, paid, totals.total)
        token = secrets.token_urlsafe(24)
        status = OrderStatus.PLACED if paid is None else OrderStatus.PAID
        order = Order(
            id=order_id,
            number=domain.new_number(),
            checkout_id=checkout_id,
            customer_id=new.customer_id,
            email=email,
            market=market,
            currency=currency,
            status=status,
            # A line without a discount says so with zero, as it reads back.
            lines=tuple(
                replace(line, discount=line.discount or Money.zero(currency)) for line in new.lines
            ),
            subtotal=totals.subtotal,
            tax=totals.tax,
            shipping=totals.shipping,
            total=totals.total,
            tax_inclusive=new.tax_inclusive,
            paid=paid or Money.zero(currency),
            refunded=Money.zero(currency),
            shipping_address=dict(new.shipping_address),
            payment_id=new.payment_id,
            placed_at=now,
            updated_at=now,
            history=(HistoryEntry(None, OrderStatus.PLACED, now, "checkout", None),)
            + (
                ()
                if paid is None
                else (HistoryEntry(OrderStatus.PLACED, OrderStatus.PAID, now, "checkout", None),)
            ),
            anonymized_at=None,
        )
        values = {
            "checkout_id": checkout_id,
            "customer_id": new.customer_id,
            "email_encrypted": self._keyring.encrypt(email, context=EMAIL_CONTEXT),
            "email_index": self._email_index(email),
            "market": market,
            "currency": currency,
            "subtotal": totals.subtotal.amount,
            "tax": totals.tax.amount,
            "shipping": totals.shipping.amount,
            "total": totals.total.amount,
            "tax_inclusive": new.tax_inclusive,
            "paid_amount": order.paid.amount,
            "refunded_amount": 0,
            "status": status.value,
            "shipping_address_encrypted": self._keyring.encrypt(
                orjson.dumps(dict(new.shipping_address), option=orjson.OPT_SORT_KEYS).decode(),
                context=ADDRESS_CONTEXT,
            ),
            "payment_id": new.payment_id,
            "access_token_hash": _hash(token),
            "placed_at": now,
            "updated_at": now,
        }
        return _Draft(order, values, token)

    # --- reading ----------------------------------------------------------------------------

    async def order(self, order_id: str) -> Order:
        async with self._db.reading() as conn:
            found = await load(conn, order_id, self._keyring)
        if found is None:
            raise OrderNotFound(order_id)
        return found

    async def orders(self, order_ids: Sequence[str]) -> list[Order]:
        """The orders with these ids, for readers that need many at once (two statements
        whatever their number); ids of no order are passed over."""
        async with self._db.reading() as conn:
            return await load_many(conn, order_ids, self._keyring)

    async def order_for_checkout(self, checkout_id: str) -> Order | None:
        """The order a checkout placed, if it got that far."""
        async with self._db.reading() as conn:
            rows = await order_rows(conn, [orders.c.checkout_id == checkout_id])
            return (await assemble(conn, rows, self._keyring))[0] if rows else None

    async def order_for_guest(self, order_id: str, token: str) -> Order:
        """The order, if `token` is its secret; a wrong token looks exactly like no order."""
        async with self._db.reading() as conn:
            stored = await conn.scalar(
                select(orders.c.access_token_hash).where(orders.c.id == order_id)
            )
            if stored is None or not hmac.compare_digest(stored, _hash(token)):
                raise OrderNotFound(order_id)
            found = await load(conn, order_id, self._keyring)
        if found is None:
            raise OrderNotFound(order_id)
        return found

    async def order_of_customer(self, order_id: str, customer_id: str) -> Order:
        """The order if this customer placed it; anyone else's order looks like no order."""
        async with self._db.reading() as conn:
            rows = await order_rows(
                conn, [orders.c.id == order_id, orders.c.customer_id == customer_id]
            )
            found = await assemble(conn, rows, self._keyring)
        if not found:
            raise OrderNotFound(order_id)
        return found[0]

    async def orders_of_customer(
        self, customer_id: str, limit: int = 20, offset: int = 0
    ) -> Page[Order]:
        return await self._page([orders.c.customer_id == customer_id], limit, offset)

    async def customers_with_orders(self, customer_ids: Sequence[str]) -> set[str]:
        """Which of these customers have placed an order that was not cancelled."""
        if not customer_ids:
            return set()
        async with self._db.reading() as conn:
            rows = await conn.execute(
                select(orders.c.customer_id)
                .where(
                    orders.c.customer_id.in_(sorted(set(customer_ids))),
                    orders.c.status != OrderStatus.CANCELLED.value,
                )
                .distinct()
            )
            return {row.customer_id for row in rows}

    async def search(
        self,
        status: str | None = None,
        email: str | None = None,
        placed_from: datetime | None = None,
        placed_to: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> Page[Order]:
        """Orders newest first, filtered by status, e-mail and placement time [from, to)."""
        where: list[ColumnElement[bool]] = []
        if status is not None:
            try:
                where.append(orders.c.status == OrderStatus(status).value)
            except ValueError:
                known = ", ".join(s.value for s in OrderStatus)
                raise InvalidInput(
                    f"'{status}' is not an order status; use one of {known}", field="status"
                ) from None
        if email is not None:
            where.append(orders.c.email_index == self._email_index(email))
        if placed_from is not None:
            where.append(orders.c.placed_at >= placed_from)
        if placed_to is not None:
            where.append(orders.c.placed_at < placed_to)
        return await self._page(where, limit, offset)

    async def _page(self, where: list[ColumnElement[bool]], limit: int, offset: int) -> Page[Order]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit is 1-{MAX_PAGE}, not {limit}", field="limit")
        if offset < 0:
            raise InvalidInput(f"offset cannot be negative, not {offset}", field="offset")
        async with self._db.reading() as conn:
            total = await conn.scalar(select(func.count()).select_from(orders).where(*where))
            rows = await order_rows(conn, where, limit=limit, offset=offset)
            items = await assemble(conn, rows, self._keyring)
        return Page(tuple(items), int(total or 0), limit, offset)

    # --- personal data: export, erasure, retention, key rotation ------------------------------

    async def export_for_customer(self, customer_id: str) -> list[dict[str, Any]]:
        """Every order of the customer as plain JSON-ready data, newest first."""
        async with self._db.reading() as conn:
            rows = await order_rows(conn, [orders.c.customer_id == customer_id])
            found = await assemble(conn, rows, self._keyring)
        return [_exported(order) for order in found]

    async def anonymize_customer(self, customer_id: str) -> int:
        """Remove the customer from their orders; returns how many orders changed.

        The orders keep amounts, lines, statuses and dates for the books; the e-mail, the
        address, their index and the link to the customer go, so nothing left points at a
        person. Running it again finds nothing and returns 0.
        """
        return await self._anonymize(orders.c.customer_id == customer_id)

    async def erase_guest_data(self, placed_before: datetime) -> int:
        """Anonymize guest orders placed before the cutoff (retention); returns how many."""
        return await self._anonymize(
            orders.c.customer_id.is_(None),
            orders.c.placed_at < placed_before,
            orders.c.anonymized_at.is_(None),
        )

    async def _anonymize(self, *where: ColumnElement[bool]) -> int:
        chosen = select(orders.c.id).where(*where).scalar_subquery()
        async with self._db.transaction() as uow:
            # Notes are free text (a cancel reason, a tracking number) and may name the buyer.
            await uow.execute(
                update(history)
                .where(history.c.order_id.in_(chosen), history.c.note.is_not(None))
                .values(note=None)
            )
            changed = await uow.execute(
                update(orders)
                .where(*where)
                .values(
                    email_encrypted=None,
                    email_index=None,
                    shipping_address_encrypted=None,
                    customer_id=None,
                    anonymized_at=self._clock.now(),
                )
            )
            await uow.commit()
        return int(changed.rowcount)

    async def reencrypt(
        self, progress: Callable[[int], None] | None = None, *, batch_size: int = 200
    ) -> int:
        """Re-encrypt buyers' e-mails and addresses under the keyring's newest key; resumable."""
        return await reencrypt(
            self._db,
            self._keyring,
            orders,
            _ENCRYPTED,
            batch_size=batch_size,
            progress=progress,
        )

    async def stale_rows(self) -> int:
        """Orders holding personal data under an older key than the newest."""
        return await count_stale(self._db, self._keyring, orders, [name for name, _ in _ENCRYPTED])

    def _email_index(self, email: str) -> str:
        return self._keyring.blind_index(email.strip().lower(), context=EMAIL_INDEX_CONTEXT)

    # --- moving along -------------------------------------------------------------------------

    async def mark_paid(self, order_id: str, amount: Money, *, actor: str = "checkout") -> None:
        """The payment for the whole total was captured (the caller knows the order)."""
        async with self._db.transaction() as uow:
            paid = await self._apply(
                uow,
                order_id,
                actor,
                lambda state: state.pay(amount),
                lambda row, before, after: OrderPaid(
                    order_id=row.id,
                    number=row.number,
                    checkout_id=row.checkout_id,
                    payment_id=row.payment_id,
                    amount=amount.as_dict(),
                ),
            )
            await uow.commit()
        if paid:
            count_revenue(amount)

    async def cancel(self, order_id: str, actor: str, reason: str) -> Order:
        reason = domain.valid_text("reason", reason)
        return await self._move(
            order_id,
            actor,
            OrderState.cancel,
            lambda row, before, after: OrderCancelled(
                order_id=row.id,
                number=row.number,
                checkout_id=row.checkout_id,
                payment_id=row.payment_id,
                reason=reason,
                actor=actor,
                paid_amount=before.paid.as_dict(),
            ),
            note=reason,
        )

    async def fulfil(self, order_id: str, actor: str) -> Order:
        return await self._move(
            order_id,
            actor,
            OrderState.fulfil,
            lambda row, before, after: OrderFulfilled(
                order_id=row.id, number=row.number, checkout_id=row.checkout_id, actor=actor
            ),
        )

    async def ship(self, order_id: str, actor: str, carrier: str, tracking: str) -> Order:
        carrier = domain.valid_text("carrier", carrier, limit=domain.MAX_SHIPPING_TEXT)
        tracking = domain.valid_text("tracking", tracking, limit=domain.MAX_SHIPPING_TEXT)
        return await self._move(
            order_id,
            actor,
            OrderState.ship,
            lambda row, before, after: OrderShipped(
                order_id=row.id,
                number=row.number,
                checkout_id=row.checkout_id,
                carrier=carrier,
                tracking=tracking,
                actor=actor,
            ),
            note=f"{carrier} {tracking}",
        )

    async def deliver(self, order_id: str, actor: str) -> Order:
        return await self._move(
            order_id,
            actor,
            OrderState.deliver,
            lambda row, before, after: OrderDelivered(
                order_id=row.id, number=row.number, checkout_id=row.checkout_id, actor=actor
            ),
        )

    async def hold_line_refund(
        self, order_id: str, key: str, wanted: Sequence[tuple[str, int]]
    ) -> Money:
        """Set aside these units of the order's lines (SKU, quantity) for a refund under
        `key`, and answer what they paid: each line's total after its discounts, with its tax
        where tax is added on top, prorated so that refunding every unit of a line, in any
        steps, gives back exactly what it paid. Asked again with the same key and lines it
        answers the same amount and sets nothing more aside; with other lines,
        LineRefundKeyReused. Units are never set aside twice, however many refunds race."""
        asked = domain.valid_refund_lines(wanted)
        async with self._db.transaction() as uow:
            # The order's row is the lock: refunds of one order's lines take turns.
            order = (
                await uow.execute(
                    select(orders.c.currency, orders.c.tax_inclusive)
                    .where(orders.c.id == order_id)
                    .with_for_update()
                )
            ).one_or_none()
            if order is None:
                raise OrderNotFound(order_id)
            done = (
                await uow.execute(
                    select(
                        line_refunds.c.sku, line_refunds.c.quantity, line_refunds.c.amount
                    ).where(line_refunds.c.order_id == order_id, line_refunds.c.refund_key == key)
                )
            ).all()
            if done:
                if {row.sku: row.quantity for row in done} != asked:
                    raise LineRefundKeyReused(order_id)
                return Money(sum(row.amount for row in done), order.currency)
            held = {
                row.sku: row
                for row in await uow.execute(
                    select(lines).where(lines.c.order_id == order_id, lines.c.sku.in_(asked))
                )
            }
            now = self._clock.now()
            taken: list[dict[str, Any]] = []
            for sku, quantity in asked.items():
                line = held.get(sku)
                if line is None:
                    raise LineNotOnOrder(order_id, sku)
                left = line.quantity - line.refunded_quantity
                if quantity > left:
                    raise RefundExceedsLine(order_id, sku, quantity, left)
                paid = line.line_total + (0 if order.tax_inclusive else line.tax)
                amount = domain.line_refund(
                    Money(paid, order.currency), line.quantity, line.refunded_quantity, quantity
                )
                taken.append(
                    {
                        "order_id": order_id,
                        "refund_key": key,
                        "sku": sku,
                        "quantity": quantity,
                        "amount": amount.amount,
                        "created_at": now,
                    }
                )
                await uow.execute(
                    update(lines)
                    .where(lines.c.order_id == order_id, lines.c.position == line.position)
                    .values(refunded_quantity=lines.c.refunded_quantity + quantity)
                )
            await uow.execute(line_refunds.insert(), taken)
            await uow.commit()
        return Money(sum(row["amount"] for row in taken), order.currency)

    async def release_line_refund(self, order_id: str, key: str) -> None:
        """Put back the units a refund by line set aside under `key` (its money did not go
        back: payments refused it). Asked again, it finds nothing."""
        async with self._db.transaction() as uow:
            gone = (
                await uow.execute(
                    line_refunds.delete()
                    .where(line_refunds.c.order_id == order_id, line_refunds.c.refund_key == key)
                    .returning(line_refunds.c.sku, line_refunds.c.quantity)
                )
            ).all()
            for sku, quantity in gone:
                await uow.execute(
                    update(lines)
                    .where(lines.c.order_id == order_id, lines.c.sku == sku)
                    .values(refunded_quantity=lines.c.refunded_quantity - quantity)
                )
            await uow.commit()

    async def record_refund(self, order_id: str, amount: Money, actor: str) -> Order:
        """Money went back to the buyer (payments did that); grow the refunded amount."""
        return await self._move(
            order_id,
            actor,
            lambda state: state.refund(amount),
            _refunded(actor),
            note=f"refund {amount.amount} {amount.currency}",
        )

    async def record_refunded_total(self, order_id: str, total: Money, actor: str) -> Order:
        """Payments says `total` went back in all; record the part not recorded yet. Repeated,
        or called by two processes at once, it records each unit once."""

        def catch_up(state: OrderState) -> OrderState:
            missing = total - state.refunded
            return state.refund(missing) if missing.amount > 0 else state

        return await self._move(
            order_id,
            actor,
            catch_up,
            _refunded(actor),
            note=f"refunded in all {total.amount} {total.currency}",
        )

    async def _move(
        self,
        order_id: str,
        actor: str,
        change: Callable[[OrderState], OrderState],
        event: Callable[[Any, OrderState, OrderState], Event],
        *,
        note: str | None = None,
    ) -> Order:
        async with self._db.transaction() as uow:
            await self._apply(uow, order_id, actor, change, event, note=note)
            order = await load(uow.connection, order_id, self._keyring)
            await uow.commit()
        assert order is not None
        return order

    async def _apply(
        self,
        uow: UnitOfWork,
        order_id: str,
        actor: str,
        change: Callable[[OrderState], OrderState],
        event: Callable[[Any, OrderState, OrderState], Event],
        *,
        note: str | None = None,
    ) -> bool:
        """Move the order by `change` and record it; a change already made writes nothing
        (and answers False)."""
        actor = domain.valid_text("actor", actor, limit=120)
        now = self._clock.now()
        for _ in range(5):
            row = (await uow.execute(select(orders).where(orders.c.id == order_id))).one_or_none()
            if row is None:
                raise OrderNotFound(order_id)
            before = state_of(row)
            after = change(before)
            if after == before:
                # A repeated payment or cancel: already recorded, nothing to write.
                return False
            # Only if nobody moved the order since we read it; else read again and re-decide.
            moved = await uow.execute(
                update(orders)
                .where(
                    orders.c.id == order_id,
                    orders.c.status == before.status.value,
                    orders.c.paid_amount == before.paid.amount,
                    orders.c.refunded_amount == before.refunded.amount,
                )
                .values(
                    status=after.status.value,
                    paid_amount=after.paid.amount,
                    refunded_amount=after.refunded.amount,
                    updated_at=now,
                )
            )
            if moved.rowcount == 1:
                break
        else:
            raise OrderBusy(order_id)
        await _append_history(uow, order_id, before.status, after.status, now, actor, note)
        uow.record(event(row, before, after))
        return True


# --- helpers ---------------------------------------------------------------------------------


def _refunded(actor: str) -> Callable[[Any, OrderState, OrderState], Event]:
    def event(row: Any, before: OrderState, after: OrderState) -> Event:
        return OrderRefunded(
            order_id=row.id,
            number=row.number,
            checkout_id=row.checkout_id,
            payment_id=row.payment_id,
            amount=(after.refunded - before.refunded).as_dict(),
            refunded_total=after.refunded.as_dict(),
            full=after.fully_refunded,
            actor=actor,
        )

    return event


_ENCRYPTED = [
    ("email_encrypted", EMAIL_CONTEXT),
    ("shipping_address_encrypted", ADDRESS_CONTEXT),
]


def _exported(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status.value,
        "placed_at": order.placed_at.isoformat(),
        "email": order.email,
        "shipping_address": order.shipping_address,
        "market": order.market,
        "currency": order.currency,
        "tax_inclusive": order.tax_inclusive,
        "lines": [_line_payload(line) for line in order.lines],
        "subtotal": order.subtotal.as_dict(),
        "tax": order.tax.as_dict(),
        "shipping": order.shipping.as_dict(),
        "total": order.total.as_dict(),
        "paid": order.paid.as_dict(),
        "refunded": order.refunded.as_dict(),
        "history": [
            {
                "from": step.from_status.value if step.from_status else None,
                "to": step.to_status.value,
                "at": step.at.isoformat(),
                "note": step.note,
            }
            for step in order.history
        ],
    }


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _line_payload(line: OrderLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": line.unit_price.as_dict(),
        "line_total": line.line_total.as_dict(),
        "tax": line.tax.as_dict(),
        "discount": (line.discount or Money.zero(line.tax.currency)).as_dict(),
        "promotions": list(line.promotions),
    }


def _line_rows(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "position": position,
            "sku": line.sku,
            "title": line.title,
            "quantity": line.quantity,
            "unit_price": line.unit_price.amount,
            "line_total": line.line_total.amount,
            "tax": line.tax.amount,
            "discount": line.discount.amount if line.discount else 0,
            "promotions": ",".join(line.promotions) or None,
        }
        for position, line in enumerate(order.lines)
    ]


def _history_rows(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "from_status": entry.from_status.value if entry.from_status else None,
            "to_status": entry.to_status.value,
            "at": entry.at,
            "actor": entry.actor,
            "note": entry.note,
        }
        for entry in order.history
    ]


def _placed_event(order: Order) -> OrderPlaced:
    return OrderPlaced(
        order_id=order.id,
        number=order.number,
        checkout_id=order.checkout_id,
        payment_id=order.payment_id,
        customer_id=order.customer_id,
        market=order.market,
        total=order.total.as_dict(),
        lines=[_line_payload(line) for line in order.lines],
        placed_at=order.placed_at.isoformat(),
    )


def _paid_event(order: Order) -> OrderPaid:
    return OrderPaid(
        order_id=order.id,
        number=order.number,
        checkout_id=order.checkout_id,
        payment_id=order.payment_id,
        amount=order.paid.as_dict(),
    )


async def _insert_orders(uow: UnitOfWork, drafts: list[_Draft]) -> None:
    """Insert a batch of orders in one statement; an order whose random number was taken
    (rare) draws another and goes again."""
    waiting = list(range(len(drafts)))
    for _ in range(5):
        if not waiting:
            return
        inserted = set(
            await insert_rows(
                uow,
                orders,
                [drafts[i].row for i in waiting],
                skip_conflicts_on=("number",),
                returning="id",
            )
        )
        waiting = [i for i in waiting if drafts[i].order.id not in inserted]
        for i in waiting:
            drafts[i] = drafts[i].numbered(drafts[i].order.id, domain.new_number())
    if waiting:
        raise Conflict("could not find free order numbers; try again")


async def _insert_order(uow: UnitOfWork, values: dict[str, Any]) -> tuple[str, str] | None:
    """Insert the order unless its checkout has one; (id, number), or None if it had one.

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same checkout to finish
    instead of failing, so racing placements end with one order and no error.
    """
    dialect = postgresql if uow.connection.dialect.name == "postgresql" else sqlite
    for _ in range(5):
        order_id, number = new_id(), domain.new_number()
        inserted = await uow.execute(
            dialect.insert(orders)
            .values(id=order_id, number=number, **values)
            .on_conflict_do_nothing()
            .returning(orders.c.id)
        )
        if inserted.first() is not None:
            return order_id, number
        taken = await uow.connection.scalar(
            select(orders.c.id).where(orders.c.checkout_id == values["checkout_id"])
        )
        if taken is not None:
            return None
        # The random number was taken by another order (rare): draw again.
    raise Conflict("could not find a free order number; try again")


async def _for_checkout(conn: AsyncConnection, checkout_id: str, keyring: Keyring) -> Order:
    rows = await order_rows(conn, [orders.c.checkout_id == checkout_id])
    return (await assemble(conn, rows, keyring))[0]


async def _append_history(
    uow: UnitOfWork,
    order_id: str,
    from_status: OrderStatus | None,
    to_status: OrderStatus,
    at: datetime,
    actor: str,
    note: str | None,
) -> None:
    await uow.execute(
        history.insert().values(
            order_id=order_id,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            at=at,
            actor=actor,
            note=note,
        )
    )
