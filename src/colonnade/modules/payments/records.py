"""How payments are read and written: rows to transfer objects, and small shared statements.
Private to the payments module; service.py re-exports the transfer objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.payments import domain
from colonnade.modules.payments.domain import (
    PaymentDeclined,
    PaymentMethod,
    PaymentStatus,
    ProviderUnavailable,
    UnknownPayment,
)
from colonnade.modules.payments.events import PaymentCaptured
from colonnade.modules.payments.schema import gift_cards, payments, refunds


@dataclass(frozen=True)
class Payment:
    id: str
    checkout_id: str
    order_id: str | None
    method: PaymentMethod
    status: PaymentStatus
    amount: Money
    authorized: Money
    captured: Money
    refunded: Money
    # What a gift card could not cover; the checkout charges it elsewhere. Zero otherwise.
    remaining: Money
    transfer_reference: str | None
    decline_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class IssuedGiftCard:
    """A new gift card. The code is shown here once; only its hash is kept."""

    id: str
    code: str
    balance: Money


def insert_for(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def payment_row(conn: AsyncConnection, payment_id: str) -> Any:
    row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).one_or_none()
    if row is None:
        raise UnknownPayment(payment_id)
    return row


async def refund_by_key(conn: AsyncConnection, key: str) -> Any:
    return (
        await conn.execute(select(refunds).where(refunds.c.idempotency_key == key))
    ).one_or_none()


async def credit_gift_card(uow: UnitOfWork, gift_card_id: str, amount: int) -> None:
    await uow.execute(
        update(gift_cards)
        .where(gift_cards.c.id == gift_card_id)
        .values(balance=gift_cards.c.balance + amount)
    )


def taken(row: Any) -> tuple[Money, Money]:
    return Money(row.captured_amount, row.currency), Money(row.refunded_amount, row.currency)


def captured_event(row: Any) -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=row.id,
        checkout_id=row.checkout_id,
        order_id=row.order_id,
        amount=row.captured_amount,
        currency=row.currency,
    )


def payment_of(row: Any) -> Payment:
    method = PaymentMethod(row.method)
    status = PaymentStatus(row.status)
    amount = Money(row.amount, row.currency)
    authorized = Money(row.authorized_amount, row.currency)
    return Payment(
        id=row.id,
        checkout_id=row.checkout_id,
        order_id=row.order_id,
        method=method,
        status=status,
        amount=amount,
        authorized=authorized,
        captured=Money(row.captured_amount, row.currency),
        refunded=Money(row.refunded_amount, row.currency),
        remaining=domain.uncovered(method, status, amount, authorized),
        transfer_reference=(
            row.provider_reference if method is PaymentMethod.BANK_TRANSFER else None
        ),
        decline_reason=row.decline_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def settled_payment(row: Any) -> Payment:
    """A payment whose authorization has an answer; a decline or no answer raises again."""
    status = PaymentStatus(row.status)
    if status is PaymentStatus.FAILED:
        raise PaymentDeclined(row.decline_reason or "declined", row.id)
    if status is PaymentStatus.UNKNOWN:
        raise ProviderUnavailable(
            f"the payment provider did not answer for payment '{row.id}'; it will be voided"
        )
    return payment_of(row)
