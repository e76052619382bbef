"""What the orders module tells the rest of the shop. Payloads hold JSON-ready values only.

Orders only record; what a change means for stock and money is for others to act on. Every
event carries `checkout_id` and `payment_id`, so the checkout can find the reservation and
the payment behind an order without asking for it. No event carries the buyer's e-mail or
address: a consumer that needs them asks `OrdersService.order`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class OrderPlaced(Event):
    event_type: ClassVar[str] = "orders.OrderPlaced"

    order_id: str
    number: str
    checkout_id: str
    payment_id: str | None
    customer_id: str | None
    market: str
    # {"amount", "currency"}
    total: dict[str, Any]
    # One {"sku", "title", "quantity", "unit_price", "line_total", "tax", "discount",
    # "promotions"} per line (line_total after the discount; promotions: their ids); the
    # amounts are {"amount", "currency"}.
    lines: list[dict[str, Any]]
    # When it was placed (ISO 8601, the shop's clock); None in events written before it was.
    placed_at: str | None = None


@dataclass(frozen=True)
class OrderPaid(Event):
    event_type: ClassVar[str] = "orders.OrderPaid"

    order_id: str
    number: str
    checkout_id: str
    payment_id: str | None
    amount: dict[str, Any]


@dataclass(frozen=True)
class OrderCancelled(Event):
    """The order will not be fulfilled: release its stock, and give back `paid_amount`."""

    event_type: ClassVar[str] = "orders.OrderCancelled"

    order_id: str
    number: str
    checkout_id: str
    payment_id: str | None
    reason: str
    actor: str
    # What was captured before the cancel; zero when only an authorization is to be voided.
    paid_amount: dict[str, Any]


@dataclass(frozen=True)
class OrderFulfilled(Event):
    event_type: ClassVar[str] = "orders.OrderFulfilled"

    order_id: str
    number: str
    checkout_id: str
    actor: str


@dataclass(frozen=True)
class OrderShipped(Event):
    event_type: ClassVar[str] = "orders.OrderShipped"

    order_id: str
    number: str
    checkout_id: str
    carrier: str
    tracking: str
    actor: str


@dataclass(frozen=True)
class OrderDelivered(Event):
    event_type: ClassVar[str] = "orders.OrderDelivered"

    order_id: str
    number: str
    checkout_id: str
    actor: str


@dataclass(frozen=True)
class OrderRefunded(Event):
    """Money went back; `refunded_total` is everything refunded so far, `full` if all of it."""

    event_type: ClassVar[str] = "orders.OrderRefunded"

    order_id: str
    number: str
    checkout_id: str
    payment_id: str | None
    amount: dict[str, Any]
    refunded_total: dict[str, Any]
    full: bool
    actor: str
