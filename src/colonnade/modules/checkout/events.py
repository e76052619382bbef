"""Events the checkout module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class CheckoutCompleted(Event):
    event_type = "checkout.CheckoutCompleted"
    checkout_id: str
    cart_id: str
    order_id: str
    total: dict[str, int | str]


@dataclass(frozen=True)
class CheckoutFailed(Event):
    event_type = "checkout.CheckoutFailed"
    checkout_id: str
    cart_id: str
    code: str
