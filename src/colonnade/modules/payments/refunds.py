"""The steps of a refund. First its amount is set aside on the payment by a conditional
UPDATE (so concurrent refunds can never add up to more than the capture); then the provider
is asked, outside any transaction; then the refund is completed, or its amount given back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, update

from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.payments import domain
from colonnade.modules.payments.domain import PaymentStatus, RefundExceedsCapture, RefundStatus
from colonnade.modules.payments.events import PaymentRefunded
from colonnade.modules.payments.records import (
    Payment,
    credit_gift_card,
    insert_for,
    payment_of,
    payment_row,
    refund_by_key,
    taken,
)
from colonnade.modules.payments.schema import payments, refunds


async def set_aside(uow: UnitOfWork, clock: Clock, payment_id: str, amount: Money, key: str) -> Any:
    """Reserve the refund's amount on the payment: the conditional UPDATE decides.

    The key is claimed first, so a concurrent request with the same key waits for the first
    and then answers with its refund instead of judging the amount a second time.
    """
    claimed = await uow.execute(
        insert_for(uow.connection, refunds)
        .values(
            id=new_id(),
            payment_id=payment_id,
            amount=amount.amount,
            idempotency_key=key,
            status=RefundStatus.REQUESTED.value,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=[refunds.c.idempotency_key])
    )
    if claimed.rowcount == 1:
        row = await payment_row(uow.connection, payment_id)
        domain.check_refundable(payment_id, PaymentStatus(row.status), *taken(row), amount)
        refunded = payments.c.refunded_amount + amount.amount
        reserved = await uow.execute(
            update(payments)
            .where(
                payments.c.id == payment_id,
                payments.c.status.in_([s.value for s in domain.CAPTURED_STATUSES]),
                refunded <= payments.c.captured_amount,
            )
            .values(
                refunded_amount=refunded,
                status=case(
                    (refunded >= payments.c.captured_amount, PaymentStatus.REFUNDED.value),
                    else_=PaymentStatus.CAPTURED.value,
                ),
                updated_at=clock.now(),
            )
        )
        if reserved.rowcount != 1:
            # Another refund got there first: explain with the numbers as they are now.
            now = await payment_row(uow.connection, payment_id)
            domain.check_refundable(payment_id, PaymentStatus(now.status), *taken(now), amount)
            raise RefundExceedsCapture(payment_id, amount, Money.zero(amount.currency))
    refund = await refund_by_key(uow.connection, key)
    assert refund is not None
    return refund


async def give_back_set_aside(db: Database, clock: Clock, refund: Any) -> None:
    async with db.transaction() as uow:
        dropped = await uow.execute(
            refunds.delete().where(
                refunds.c.id == refund.id, refunds.c.status == RefundStatus.REQUESTED.value
            )
        )
        if dropped.rowcount == 1:
            await uow.execute(
                update(payments)
                .where(payments.c.id == refund.payment_id)
                .values(
                    refunded_amount=payments.c.refunded_amount - refund.amount,
                    status=PaymentStatus.CAPTURED.value,
                    updated_at=clock.now(),
                )
            )
        await uow.commit()


async def complete_refund(db: Database, refund: Any) -> Payment:
    async with db.transaction() as uow:
        done = await uow.execute(
            update(refunds)
            .where(refunds.c.id == refund.id, refunds.c.status == RefundStatus.REQUESTED.value)
            .values(status=RefundStatus.SUCCEEDED.value)
        )
        row = await payment_row(uow.connection, refund.payment_id)
        if done.rowcount == 1:
            if row.gift_card_id is not None:
                await credit_gift_card(uow, row.gift_card_id, refund.amount)
            uow.record(
                PaymentRefunded(
                    payment_id=row.id,
                    refund_id=refund.id,
                    order_id=row.order_id,
                    amount=refund.amount,
                    currency=row.currency,
                )
            )
        await uow.commit()
    return payment_of(row)
