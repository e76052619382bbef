"""Turning rows into orders: a page of orders costs three queries (orders, lines, history),
orders by their ids two (orders with their lines, history).

The buyer's e-mail and address are opened here, with the keyring, and nowhere else.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from colonnade.kernel.crypto import Keyring
from colonnade.kernel.money import Money
from colonnade.modules.orders.domain import OrderLine, OrderState, OrderStatus
from colonnade.modules.orders.schema import history, lines, orders


@dataclass(frozen=True)
class HistoryEntry:
    """One step of the order's life; `from_status` is None for the placement."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    actor: str
    note: str | None


@dataclass(frozen=True)
class Order:
    id: str
    number: str
    checkout_id: str
    customer_id: str | None
    # None once the order is anonymized (erasure or retention).
    email: str | None
    market: str
    currency: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    subtotal: Money
    tax: Money
    shipping: Money
    total: Money
    tax_inclusive: bool
    paid: Money
    refunded: Money
    shipping_address: dict[str, Any] | None
    payment_id: str | None
    placed_at: datetime
    updated_at: datetime
    history: tuple[HistoryEntry, ...]
    anonymized_at: datetime | None

    @property
    def discount(self) -> Money:
        """What promotions took off the order: its lines' discounts."""
        return Money(sum(ln.discount.amount for ln in self.lines if ln.discount), self.currency)


# Field-encryption contexts: a value copied into another column does not open there.
EMAIL_CONTEXT = "orders.orders.email"
ADDRESS_CONTEXT = "orders.orders.shipping_address"
# The blind index identity keeps for customers' e-mails too, so both find one address alike.
EMAIL_INDEX_CONTEXT = "email"


# Everything but the guest secret's hash, which only the guest check reads.
ORDER_COLUMNS = [c for c in orders.c if c.name != "access_token_hash"]


def state_of(row: Any) -> OrderState:
    return OrderState(
        order_id=row.id,
        status=OrderStatus(row.status),
        total=Money(row.total, row.currency),
        paid=Money(row.paid_amount, row.currency),
        refunded=Money(row.refunded_amount, row.currency),
    )


async def order_rows(
    conn: AsyncConnection,
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[Any]:
    query = (
        select(*ORDER_COLUMNS)
        .where(*where)
        .order_by(orders.c.placed_at.desc(), orders.c.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return list((await conn.execute(query)).all())


async def assemble(conn: AsyncConnection, rows: Sequence[Any], keyring: Keyring) -> list[Order]:
    """Orders for these rows, their lines and history fetched with one IN query each."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    line_rows = await conn.execute(
        select(lines).where(lines.c.order_id.in_(ids)).order_by(lines.c.order_id, lines.c.position)
    )
    currencies = {row.id: row.currency for row in rows}
    by_order: dict[str, list[OrderLine]] = defaultdict(list)
    for line in line_rows:
        by_order[line.order_id].append(_line(line, currencies[line.order_id]))
    steps = await _history(conn, ids)
    return [await _order(row, by_order[row.id], steps[row.id], keyring) for row in rows]


async def load_many(
    conn: AsyncConnection, order_ids: Sequence[str], keyring: Keyring
) -> list[Order]:
    """The orders with these ids (unknown ones are passed over), in two statements: the
    orders joined with their lines, then their history."""
    if not order_ids:
        return []
    joined = await conn.execute(
        select(*ORDER_COLUMNS, *(lines.c[c].label(f"line_{c}") for c in _LINE_FIELDS))
        .select_from(orders.outerjoin(lines, lines.c.order_id == orders.c.id))
        .where(orders.c.id.in_(order_ids))
        .order_by(orders.c.id, lines.c.position)
    )
    heads: dict[str, Any] = {}
    by_order: dict[str, list[OrderLine]] = defaultdict(list)
    for row in joined:
        heads.setdefault(row.id, row)
        if row.line_sku is not None:  # an order without lines joins one row of nulls
            by_order[row.id].append(_line(row, row.currency, prefix="line_"))
    steps = await _history(conn, list(heads))
    return [await _order(row, by_order[id_], steps[id_], keyring) for id_, row in heads.items()]


async def load(conn: AsyncConnection, order_id: str, keyring: Keyring) -> Order | None:
    rows = await order_rows(conn, [orders.c.id == order_id])
    found = await assemble(conn, rows, keyring)
    return found[0] if found else None


_LINE_FIELDS = (
    "sku",
    "title",
    "quantity",
    "unit_price",
    "line_total",
    "tax",
    "discount",
    "promotions",
    "refunded_quantity",
)


def _line(row: Any, currency: str, *, prefix: str = "") -> OrderLine:
    field = row._mapping
    return OrderLine(
        sku=field[prefix + "sku"],
        title=field[prefix + "title"],
        quantity=field[prefix + "quantity"],
        unit_price=Money(field[prefix + "unit_price"], currency),
        line_total=Money(field[prefix + "line_total"], currency),
        tax=Money(field[prefix + "tax"], currency),
        discount=Money(field[prefix + "discount"], currency),
        promotions=tuple(filter(None, (field[prefix + "promotions"] or "").split(","))),
        refunded_quantity=field[prefix + "refunded_quantity"],
    )


async def _history(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
    steps: dict[str, list[HistoryEntry]] = defaultdict(list)
    if not ids:
        return steps
    history_rows = await conn.execute(
        select(history).where(history.c.order_id.in_(ids)).order_by(history.c.id)
    )
    for step in history_rows:
        steps[step.order_id].append(
            HistoryEntry(
                from_status=OrderStatus(step.from_status) if step.from_status else None,
                to_status=OrderStatus(step.to_status),
                at=step.at,
                actor=step.actor,
                note=step.note,
            )
        )
    return steps


async def _order(
    row: Any, order_lines: list[OrderLine], steps: list[HistoryEntry], keyring: Keyring
) -> Order:
    currency = row.currency
    address = await keyring.decrypt_optional(
        row.shipping_address_encrypted, context=ADDRESS_CONTEXT
    )

    def money(amount: int) -> Money:
        return Money(amount, currency)

    return Order(
        id=row.id,
        number=row.number,
        checkout_id=row.checkout_id,
        customer_id=row.customer_id,
        email=await keyring.decrypt_optional(row.email_encrypted, context=EMAIL_CONTEXT),
        market=row.market,
        currency=currency,
        status=OrderStatus(row.status),
        lines=tuple(order_lines),
        subtotal=money(row.subtotal),
        tax=money(row.tax),
        shipping=money(row.shipping),
        total=money(row.total),
        tax_inclusive=bool(row.tax_inclusive),
        paid=money(row.paid_amount),
        refunded=money(row.refunded_amount),
        shipping_address=None if address is None else json.loads(address),
        payment_id=row.payment_id,
        placed_at=row.placed_at,
        updated_at=row.updated_at,
        history=tuple(steps),
        anonymized_at=row.anonymized_at,
    )
