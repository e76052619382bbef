"""Notifications' public use cases: confirm paid orders to their buyers, forget an erased customer.

Messages are recorded and handed to the mailer inside the consumer's unit of work, the one
that also marks the events taken (the inbox): a redelivered event finds its mark and sends
nothing, and a failed send leaves neither record nor mark, so the events are offered again.
Paid orders come in batches: one read of their orders and one insert of their messages,
however many; a failed send fails its batch, whose events are then offered again one by one
(so the mails sent before it in the batch go out twice, as after a crash before a commit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy import insert, select, update

from colonnade.kernel import tracing
from colonnade.kernel.clock import Clock
from colonnade.kernel.crypto import Keyring, count_stale, reencrypt
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.ids import new_id
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.notifications import domain
from colonnade.modules.notifications.domain import BoughtLine, Mail, PaidOrder
from colonnade.modules.notifications.schema import messages
from colonnade.modules.orders.events import OrderPaid
from colonnade.modules.orders.service import Order, OrderNotFound

__all__ = ["Mail", "Mailer", "NotificationsService", "OrderBook", "SentMessage"]

log = structlog.get_logger(__name__)

# Field-encryption context: the address opens in this column only.
RECIPIENT_CONTEXT = "notifications.messages.recipient"


class Mailer(Protocol):
    """Where e-mails leave the shop; raising makes the event be offered again."""

    async def send(self, mail: Mail) -> None: ...


class OrderBook(Protocol):
    """The orders module, as notifications need it: orders with their buyers' e-mails."""

    async def orders(self, order_ids: Sequence[str]) -> Sequence[Order]: ...


@dataclass(frozen=True)
class SentMessage:
    id: str
    order_id: str
    customer_id: str | None
    # None once the customer was erased.
    recipient: str | None
    subject: str
    body: str
    sent_at: datetime
    trace_id: str | None


class NotificationsService:
    def __init__(
        self, db: Database, *, keyring: Keyring, orders: OrderBook, mailer: Mailer, clock: Clock
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._orders = orders
        self._mailer = mailer
        self._clock = clock

    async def confirm_orders(self, paid: Sequence[Envelope], uow: UnitOfWork) -> None:
        """Send the buyer of each paid order (an OrderPaid event each) its confirmation, and
        record them."""
        order_ids = [envelope.open(OrderPaid).order_id for envelope in paid]
        found = {order.id: order for order in await self._orders.orders(order_ids)}
        letters = []
        for envelope, order_id in zip(paid, order_ids, strict=True):
            order = found.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if order.email is None:
                # Erased before its confirmation went out: there is nobody to write to.
                log.info("notifications.no_recipient", order_id=order_id)
                continue
            letters.append((envelope, order, domain.order_confirmation(order.email, _paid(order))))
        if not letters:
            return
        sent_at = self._clock.now()
        # With RETURNING, SQLAlchemy sends the rows as one multi-row INSERT on every driver
        # (compiled once, whatever their number) instead of the driver's executemany.
        await uow.execute(
            insert(messages).returning(messages.c.id),
            [
                {
                    "id": new_id(),
                    "order_id": order.id,
                    "customer_id": order.customer_id,
                    "recipient_encrypted": self._keyring.encrypt(
                        mail.to, context=RECIPIENT_CONTEXT
                    ),
                    "subject": mail.subject,
                    "body": mail.body,
                    "sent_at": sent_at,
                    "trace_id": tracing.trace_id_of(envelope),
                }
                for envelope, order, mail in letters
            ],
        )
        for envelope, order, mail in letters:
            # In the trace of the request that paid the order, whatever batch this is.
            with tracing.following(
                envelope, "notifications.send", {"colonnade.order.id": order.id}
            ):
                await self._mailer.send(mail)

    async def forget_customer(self, customer_id: str, uow: UnitOfWork) -> None:
        """Remove an erased customer from the messages they were sent: the address and the
        link to them go; what was said (order, subject, body) stays, naming nobody."""
        forgotten = await uow.execute(
            update(messages)
            .where(messages.c.customer_id == customer_id)
            .values(customer_id=None, recipient_encrypted=None)
        )
        log.info("notifications.customer_forgotten", messages=int(forgotten.rowcount))

    async def forget_guest_recipients(self, sent_before: datetime) -> int:
        """Retention: guests' messages sent before the cutoff lose their recipient, as their
        orders lose the buyer's e-mail; returns how many."""
        async with self._db.transaction() as uow:
            forgotten = await uow.execute(
                update(messages)
                .where(
                    messages.c.customer_id.is_(None),
                    messages.c.sent_at < sent_before,
                    messages.c.recipient_encrypted.is_not(None),
                )
                .values(recipient_encrypted=None)
            )
            await uow.commit()
        return int(forgotten.rowcount)

    async def sent_for_order(self, order_id: str) -> list[SentMessage]:
        """The messages sent about an order, oldest first, recipients opened."""
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(
                    select(messages)
                    .where(messages.c.order_id == order_id)
                    .order_by(messages.c.sent_at, messages.c.id)
                )
            ).all()
        return [
            SentMessage(
                id=row.id,
                order_id=row.order_id,
                customer_id=row.customer_id,
                recipient=await self._keyring.decrypt_optional(
                    row.recipient_encrypted, context=RECIPIENT_CONTEXT
                ),
                subject=row.subject,
                body=row.body,
                sent_at=row.sent_at,
                trace_id=row.trace_id,
            )
            for row in rows
        ]

    async def reencrypt(
        self, progress: Callable[[int], None] | None = None, *, batch_size: int = 200
    ) -> int:
        """Re-encrypt recipients under the keyring's newest key; resumable."""
        return await reencrypt(
            self._db,
            self._keyring,
            messages,
            [("recipient_encrypted", RECIPIENT_CONTEXT)],
            batch_size=batch_size,
            progress=progress,
        )

    async def stale_rows(self) -> int:
        """Messages whose recipient is under an older key than the newest."""
        return await count_stale(self._db, self._keyring, messages, ["recipient_encrypted"])


def _paid(order: Order) -> PaidOrder:
    return PaidOrder(
        number=order.number,
        lines=[BoughtLine(line.title, line.quantity, line.line_total) for line in order.lines],
        total=order.total,
    )
