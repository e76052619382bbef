"""Events the checkout module publishes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from colonnade.kernel.errors import ColonnadeError
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
    # The problem's code: out_of_stock, payment_declined, ...
    code: str
    # The cart's market; None where the cart was not found, or in events written before.
    market: str | None = None
    # Why, where the problem says (a payment provider's decline reason).
    reason: str | None = None
    # When (ISO 8601, the shop's clock); None in events written before it was.
    failed_at: str | None = None

    @classmethod
    def of(
        cls,
        checkout_id: str,
        cart_id: str,
        market: str | None,
        error: ColonnadeError,
        at: datetime,
    ) -> CheckoutFailed:
        reason = error.extensions.get("reason")
        return cls(
            checkout_id=checkout_id,
            cart_id=cart_id,
            code=error.code,
            market=market,
            reason=reason if isinstance(reason, str) else None,
            failed_at=at.isoformat(),
        )
