"""Payments' admin routes: thin, they parse, authorize and call one service method."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from colonnade.kernel.errors import UnknownCurrency
from colonnade.kernel.ids import new_id
from colonnade.modules.payments.domain import (
    InvalidAmount,
    InvalidPayment,
    PaymentStateConflict,
    ProviderRefused,
    ProviderUnavailable,
    RefundExceedsCapture,
    RefundKeyReused,
    TransferAmountMismatch,
    UnknownPayment,
)
from colonnade.modules.payments.service import IssuedGiftCard, Payment, PaymentsService
from colonnade.web.auth import requires
from colonnade.web.fields import (
    IDEMPOTENCY_KEY_PATTERN,
)
from colonnade.web.money import MoneyIn, MoneyOut
from colonnade.web.problems import refusals

READ = "orders:read"
REFUND = "orders:refund"
WRITE = "payments:write"


class AmountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn


class PaymentOut(BaseModel):
    id: str
    checkout_id: str
    order_id: str | None
    method: str
    status: str
    amount: MoneyOut
    authorized: MoneyOut
    captured: MoneyOut
    refunded: MoneyOut
    remaining: MoneyOut
    transfer_reference: str | None
    decline_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            checkout_id=p.checkout_id,
            order_id=p.order_id,
            method=p.method.value,
            status=p.status.value,
            amount=MoneyOut.of(p.amount),
            authorized=MoneyOut.of(p.authorized),
            captured=MoneyOut.of(p.captured),
            refunded=MoneyOut.of(p.refunded),
            remaining=MoneyOut.of(p.remaining),
            transfer_reference=p.transfer_reference,
            decline_reason=p.decline_reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class GiftCardOut(BaseModel):
    id: str
    code: str = Field(description="Shown this once; only its hash is kept.")
    balance: MoneyOut

    @classmethod
    def of(cls, card: IssuedGiftCard) -> GiftCardOut:
        return cls(id=card.id, code=card.code, balance=MoneyOut.of(card.balance))


def router(payments: PaymentsService) -> APIRouter:
    routes = APIRouter(tags=["payments"])

    @routes.get(
        "/admin/payments/{payment_id}",
        dependencies=[Depends(requires(READ))],
        response_model=PaymentOut,
        responses=refusals(UnknownPayment),
    )
    async def show_payment(payment_id: str) -> PaymentOut:
        """A payment: what was authorized, captured and refunded."""
        return PaymentOut.of(await payments.payment(payment_id))

    @routes.post(
        "/admin/payments/{payment_id}/refund",
        dependencies=[Depends(requires(REFUND))],
        response_model=PaymentOut,
        responses=refusals(
            UnknownCurrency,
            UnknownPayment,
            PaymentStateConflict,
            InvalidAmount,
            RefundExceedsCapture,
            RefundKeyReused,
            ProviderRefused,
            ProviderUnavailable,
        ),
    )
    async def refund_payment(
        payment_id: str,
        body: AmountIn,
        # Optional, yet never null: a header is there or not.
        idempotency_key: str = Header(default=None, pattern=IDEMPOTENCY_KEY_PATTERN),
    ) -> PaymentOut:
        """Refund part or all of a captured payment. Send an Idempotency-Key header to make
        a retry safe; without one every request is a new refund."""
        key = idempotency_key or new_id()
        return PaymentOut.of(await payments.refund(payment_id, body.amount.money(), key))

    @routes.post(
        "/admin/payments/{payment_id}/confirm-transfer",
        dependencies=[Depends(requires(WRITE))],
        response_model=PaymentOut,
        responses=refusals(
            UnknownCurrency,
            UnknownPayment,
            InvalidPayment,
            TransferAmountMismatch,
            PaymentStateConflict,
        ),
    )
    async def confirm_transfer(payment_id: str, body: AmountIn) -> PaymentOut:
        """Record that a bank transfer arrived: the payment is captured."""
        return PaymentOut.of(await payments.confirm_transfer(payment_id, body.amount.money()))

    @routes.post(
        "/admin/gift-cards",
        dependencies=[Depends(requires(WRITE))],
        response_model=GiftCardOut,
        status_code=201,
        responses=refusals(UnknownCurrency),
    )
    async def issue_gift_card(body: AmountIn) -> GiftCardOut:
        """Issue a gift card. Its code is in this response and nowhere else."""
        return GiftCardOut.of(await payments.issue_gift_card(body.amount.money()))

    return routes
