"""What payments tell the rest of the shop. Amounts are minor units with their currency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class PaymentAuthorized(Event):
    event_type: ClassVar[str] = "payments.PaymentAuthorized"

    payment_id: str
    checkout_id: str
    method: str
    amount: int
    currency: str


@dataclass(frozen=True)
class PaymentFailed(Event):
    event_type: ClassVar[str] = "payments.PaymentFailed"

    payment_id: str
    checkout_id: str
    method: str
    reason: str


@dataclass(frozen=True)
class PaymentCaptured(Event):
    event_type: ClassVar[str] = "payments.PaymentCaptured"

    payment_id: str
    checkout_id: str
    order_id: str | None
    amount: int
    currency: str


@dataclass(frozen=True)
class PaymentVoided(Event):
    event_type: ClassVar[str] = "payments.PaymentVoided"

    payment_id: str
    checkout_id: str


@dataclass(frozen=True)
class PaymentRefunded(Event):
    event_type: ClassVar[str] = "payments.PaymentRefunded"

    payment_id: str
    refund_id: str
    order_id: str | None
    amount: int
    currency: str
