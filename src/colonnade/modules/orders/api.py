"""Order routes: a guest's view of their order, and the staff's list and actions.

Thin: parse, authorize, call one service method. Guests reach an order with the secret
they were given at checkout; signed-in customers reach their own orders with their token.
To anyone else the order does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from colonnade.kernel.errors import Forbidden
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.orders.domain import (
    MAX_SHIPPING_TEXT,
    MAX_TEXT,
    IllegalTransition,
    InvalidOrder,
    OrderStatus,
)
from colonnade.modules.orders.service import (
    MAX_PAGE,
    HistoryEntry,
    Order,
    OrderBusy,
    OrderNotFound,
    OrdersService,
)
from colonnade.web.auth import current_principal, optional_principal, requires
from colonnade.web.fields import MAX_WHOLE_NUMBER, NOT_SPACE, Instant, declared
from colonnade.web.money import MoneyOut
from colonnade.web.problems import refusals

READ = "orders:read"
WRITE = "orders:write"

# Something besides white space (the domain refuses blank text with invalid_order); the
# length is checked here, before the domain trims the text.
Reason = Annotated[StrictStr, declared(pattern=NOT_SPACE), Field(max_length=MAX_TEXT)]
ShippingText = Annotated[
    StrictStr, declared(pattern=NOT_SPACE), Field(max_length=MAX_SHIPPING_TEXT)
]

# The listing refuses another status itself, naming the ones there are.
STATUSES = [status.value for status in OrderStatus]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_WHOLE_NUMBER)]

# Giving back what a cancelled order held is the checkout's (see `router`): its refusals.
PROVIDER_REFUSED = (409, "payment_provider_refused")
PROVIDER_UNAVAILABLE = (503, "payment_provider_unavailable")
# Every move of an order: it may not exist, not allow the move, or be moved by someone else.
MOVES = (OrderNotFound, IllegalTransition, OrderBusy)


class CancelOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the order is cancelled; kept in its history.")


class ShipOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: ShippingText = Field(description="Who carries the parcel, such as UPS.")
    tracking: ShippingText = Field(description="The carrier's tracking number.")


class LineOut(BaseModel):
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut = Field(description="What the line costs, its discount taken off.")
    tax: MoneyOut
    discount: MoneyOut = Field(description="What promotions took off the line.")
    promotions: list[str] = Field(description="The ids of the promotions that did.")
    refunded_quantity: int = Field(description="Units refunded by line (or being refunded).")


class StepOut(BaseModel):
    from_status: str | None = Field(alias="from", description="None for the placement.")
    to_status: str = Field(alias="to")
    at: datetime
    # Staff see who did what and why; guests see only what happened when.
    actor: str | None = None
    note: str | None = None

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, step: HistoryEntry, *, staff: bool) -> StepOut:
        return cls(
            from_status=step.from_status.value if step.from_status else None,
            to_status=step.to_status.value,
            at=step.at,
            actor=step.actor if staff else None,
            note=step.note if staff else None,
        )


class OrderOut(BaseModel):
    id: str
    number: str
    status: str
    email: str | None = Field(description="None once the order is anonymized.")
    market: str
    currency: str
    tax_inclusive: bool = Field(description="Whether line totals and subtotal include tax.")
    lines: list[LineOut]
    subtotal: MoneyOut = Field(description="The lines' totals, discounts taken off.")
    discount: MoneyOut = Field(description="What promotions took off the order.")
    tax: MoneyOut
    shipping: MoneyOut
    total: MoneyOut
    paid: MoneyOut
    refunded: MoneyOut
    shipping_address: dict[str, Any] | None = Field(
        description="None once the order is anonymized."
    )
    placed_at: datetime
    history: list[StepOut]

    @classmethod
    def of(cls, order: Order, *, staff: bool = True) -> OrderOut:
        return cls(
            id=order.id,
            number=order.number,
            status=order.status.value,
            email=order.email,
            market=order.market,
            currency=order.currency,
            tax_inclusive=order.tax_inclusive,
            lines=[
                LineOut(
                    sku=line.sku,
                    title=line.title,
                    quantity=line.quantity,
                    unit_price=MoneyOut.of(line.unit_price),
                    line_total=MoneyOut.of(line.line_total),
                    tax=MoneyOut.of(line.tax),
                    discount=MoneyOut.of(line.discount or Money.zero(order.currency)),
                    promotions=list(line.promotions),
                    refunded_quantity=line.refunded_quantity,
                )
                for line in order.lines
            ],
            subtotal=MoneyOut.of(order.subtotal),
            discount=MoneyOut.of(order.discount),
            tax=MoneyOut.of(order.tax),
            shipping=MoneyOut.of(order.shipping),
            total=MoneyOut.of(order.total),
            paid=MoneyOut.of(order.paid),
            refunded=MoneyOut.of(order.refunded),
            shipping_address=order.shipping_address,
            placed_at=order.placed_at,
            history=[StepOut.of(step, staff=staff) for step in order.history],
        )


class StaffOrderOut(OrderOut):
    """What staff see of an order: also the payment behind it."""

    payment_id: str | None

    @classmethod
    def of(cls, order: Order, *, staff: bool = True) -> StaffOrderOut:
        seen = OrderOut.of(order, staff=True)
        return cls(**dict(seen), payment_id=order.payment_id)


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int = Field(description="How many orders match the filters, on every page.")
    limit: int
    offset: int


class StaffOrderPage(OrderPage):
    items: list[StaffOrderOut]  # type: ignore[assignment]


CUSTOMER = "customer"


async def _customer(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != CUSTOMER:
        raise Forbidden("only a signed-in customer has orders of their own")
    return principal


async def _maybe_customer(
    principal: Principal | None = Depends(optional_principal),
) -> Principal | None:
    """The signed-in customer, if the request carries a customer's token."""
    return principal if principal is not None and principal.kind == CUSTOMER else None


AfterCancel = Callable[[str], Awaitable[object]]


def router(orders: OrdersService, after_cancel: AfterCancel | None = None) -> APIRouter:
    """`after_cancel` gives back what a cancelled order held (its stock and money); the
    composition root passes the checkout's, since orders only records."""
    routes = APIRouter(tags=["orders"])

    @routes.get("/store/orders", response_model=OrderPage, response_model_by_alias=True)
    async def my_orders(
        limit: Limit = 20,
        offset: Offset = 0,
        customer: Principal = Depends(_customer),
    ) -> OrderPage:
        """The signed-in customer's own orders, newest first."""
        page = await orders.orders_of_customer(customer.subject, limit, offset)
        return OrderPage(
            items=[OrderOut.of(order, staff=False) for order in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )

    @routes.get(
        "/store/orders/{order_id}",
        response_model=OrderOut,
        response_model_by_alias=True,
        responses=refusals(OrderNotFound),
    )
    async def store_order(
        order_id: str,
        token: str | None = Query(None, description="The order's secret, for guests."),
        customer: Principal | None = Depends(_maybe_customer),
    ) -> OrderOut:
        """A guest's order with the secret handed out at checkout, or a customer's own."""
        if token:
            return OrderOut.of(await orders.order_for_guest(order_id, token), staff=False)
        if customer is None:
            raise OrderNotFound(order_id)
        return OrderOut.of(await orders.order_of_customer(order_id, customer.subject), staff=False)

    @routes.get("/admin/orders", response_model=StaffOrderPage, response_model_by_alias=True)
    async def list_orders(
        status: Annotated[str | None, Query(json_schema_extra={"enum": STATUSES})] = None,
        email: str | None = None,
        placed_from: Annotated[Instant | None, Query(description="Placed at or after.")] = None,
        placed_to: Annotated[Instant | None, Query(description="Placed before.")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
        _: Principal = Depends(requires(READ)),
    ) -> StaffOrderPage:
        """Orders newest first, filtered by status, e-mail and when they were placed."""
        page = await orders.search(status, email, placed_from, placed_to, limit, offset)
        return StaffOrderPage(
            items=[StaffOrderOut.of(order) for order in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )

    @routes.get(
        "/admin/orders/{order_id}",
        response_model=StaffOrderOut,
        response_model_by_alias=True,
        responses=refusals(OrderNotFound),
    )
    async def staff_order(order_id: str, _: Principal = Depends(requires(READ))) -> StaffOrderOut:
        return StaffOrderOut.of(await orders.order(order_id))

    @routes.post(
        "/admin/orders/{order_id}/fulfil",
        response_model=StaffOrderOut,
        response_model_by_alias=True,
        responses=refusals(*MOVES),
    )
    async def fulfil_order(
        order_id: str, staff: Principal = Depends(requires(WRITE))
    ) -> StaffOrderOut:
        """The order is picked and packed."""
        return StaffOrderOut.of(await orders.fulfil(order_id, staff.subject))

    @routes.post(
        "/admin/orders/{order_id}/ship",
        response_model=StaffOrderOut,
        response_model_by_alias=True,
        responses=refusals(*MOVES, InvalidOrder),
    )
    async def ship_order(
        order_id: str, body: ShipOrder, staff: Principal = Depends(requires(WRITE))
    ) -> StaffOrderOut:
        """The parcel left with a carrier."""
        return StaffOrderOut.of(
            await orders.ship(order_id, staff.subject, body.carrier, body.tracking)
        )

    @routes.post(
        "/admin/orders/{order_id}/deliver",
        response_model=StaffOrderOut,
        response_model_by_alias=True,
        responses=refusals(*MOVES),
    )
    async def deliver_order(
        order_id: str, staff: Principal = Depends(requires(WRITE))
    ) -> StaffOrderOut:
        """The carrier delivered the parcel."""
        return StaffOrderOut.of(await orders.deliver(order_id, staff.subject))

    @routes.post(
        "/admin/orders/{order_id}/cancel",
        response_model=StaffOrderOut,
        response_model_by_alias=True,
        responses=refusals(*MOVES, InvalidOrder, PROVIDER_REFUSED, PROVIDER_UNAVAILABLE),
    )
    async def cancel_order(
        order_id: str, body: CancelOrder, staff: Principal = Depends(requires(WRITE))
    ) -> StaffOrderOut:
        """Cancel an order not yet fulfilled; its stock and money are given back."""
        await orders.cancel(order_id, staff.subject, body.reason)
        if after_cancel is not None:
            await after_cancel(order_id)
        return StaffOrderOut.of(await orders.order(order_id))

    return routes
