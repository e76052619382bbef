"""The checkout route: thin; the saga lives in the service.

With a customer's bearer token the checkout is theirs: it may buy their own cart, and the
order is placed for them. Without one it is a guest's, who may buy only guest carts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from colonnade.kernel.errors import ColonnadeError, UnknownCurrency
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.checkout.domain import (
    CartEmpty,
    CartNotOpen,
    CheckoutInProgress,
    CheckoutInterrupted,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InvalidRefund,
    NothingToCharge,
    NothingToRefund,
    PaymentRefused,
    TotalChanged,
)
from colonnade.modules.checkout.service import CheckoutRequest, CheckoutService, Outcome
from colonnade.modules.checkout.waiting_room import (
    Admission,
    CheckoutQueued,
    QueueTicketExpired,
    QueueTicketInvalid,
    QueueTicketUsed,
    WaitingRoom,
)
from colonnade.modules.promotions.service import REFUSALS as PROMOTION_REFUSALS
from colonnade.web.asgi import header
from colonnade.web.auth import optional_principal, requires
from colonnade.web.fields import (
    IDEMPOTENCY_KEY_PATTERN,
    INTEGRAL,
    MAX_WHOLE_NUMBER,
    NOT_SPACE,
    SPACE,
    PromotionCode,
    Sku,
    declared,
)
from colonnade.web.limits import path_pattern
from colonnade.web.money import MoneyIn, MoneyOut
from colonnade.web.problems import problem_response, refusals

# What the modules a checkout calls may refuse it with (cart, inventory, pricing, payments,
# orders), and what a refund meets in payments and orders.
CART_NOT_FOUND = (404, "cart_not_found")
OUT_OF_STOCK = (409, "out_of_stock")
UNKNOWN_SKU = (404, "unknown_sku")
PRICE_MISSING = (409, "price_missing")
UNKNOWN_MARKET = (422, "unknown_market")
UNKNOWN_GIFT_CARD = (404, "unknown_gift_card")
INVALID_PAYMENT = (422, "invalid_payment")
CURRENCY_MISMATCH = (422, "currency_mismatch")
PROVIDER_UNAVAILABLE = (503, "payment_provider_unavailable")
PROVIDER_REFUSED = (409, "payment_provider_refused")
INVALID_ORDER = (422, "invalid_order")
ORDER_NOT_FOUND = (404, "order_not_found")
UNKNOWN_PAYMENT = (404, "unknown_payment")
PAYMENT_STATE_CONFLICT = (409, "payment_state_conflict")
INVALID_AMOUNT = (422, "invalid_amount")
REFUND_EXCEEDS_CAPTURE = (409, "refund_exceeds_capture")
REFUND_KEY_REUSED = (409, "refund_key_reused")
REFUND_EXCEEDS_PAYMENT = (409, "refund_exceeds_payment")
ILLEGAL_TRANSITION = (409, "illegal_transition")
ORDER_BUSY = (409, "order_busy")
INVALID_REFUND_LINES = (422, "invalid_refund_lines")
LINE_NOT_ON_ORDER = (422, "line_not_on_order")
REFUND_EXCEEDS_LINE = (409, "refund_exceeds_line")

# The orders module's rule for the address an order is sent to (surrounding white space is
# trimmed), checked here so a checkout is not refused halfway through.
_EMAIL_PART = r"[^@\s\x1c-\x1f\x85\ufeff]"
EMAIL_PATTERN = rf"^{SPACE}*{_EMAIL_PART}{{1,64}}@{_EMAIL_PART}+\.{_EMAIL_PART}+{SPACE}*$"
# A refund's key is stored behind the order's id (36 characters) and before ":card", in 200.
REFUND_KEY_PATTERN = r"^[A-Za-z0-9_\-:.]{8,150}$"

CardToken = Annotated[
    str,
    Field(
        pattern=r"^tok_[A-Za-z0-9_]{1,64}$",
        description="A card processor's token: card numbers never reach Colonnade.",
    ),
]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)


class CardPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["card"]
    token: CardToken


class BankTransferPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["bank_transfer"]


class GiftCardPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["gift_card"]
    # Payments refuses a blank code with invalid_payment.
    gift_card_code: Annotated[str, declared(pattern=NOT_SPACE), Field(max_length=64)]
    token: CardToken | None = Field(
        default=None, description="The card that pays what the gift card does not cover."
    )


PaymentIn = Annotated[
    CardPayment | BankTransferPayment | GiftCardPayment, Field(discriminator="method")
]


class RefundLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Annotated[StrictInt, declared(minimum=1, maximum=MAX_WHOLE_NUMBER), INTEGRAL] = Field(
        description="Units of the line to refund."
    )


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn | None = Field(default=None, description="An amount to give back.")
    lines: Annotated[list[RefundLineIn], declared(minItems=1)] | None = Field(
        default=None,
        max_length=200,
        description="Or units of the order's lines: each gives back its share of what its "
        "line paid after discounts (tax included where it is added on top), and a line "
        "refunded in full, in any steps, gives back exactly what it paid.",
    )


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    shipping_address: Address
    payment: PaymentIn
    promotion_code: PromotionCode | None = Field(
        default=None,
        description="A discount code to buy with, in place of any the cart holds: one request "
        "fewer than entering it on the cart. Refused with its own code (unknown, ended, used "
        "up...) and nothing charged.",
    )
    expected_total: MoneyIn | None = Field(
        default=None,
        description="The total the shopper was shown. When a sale or promotion started, "
        "ended or ran out since, the total differs and the checkout answers 409 "
        "total_changed with the new total, charging nothing.",
    )


CUSTOMER = "customer"


class PurchasedLineOut(BaseModel):
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut = Field(description="What the line costs, its discount taken off.")
    tax: MoneyOut
    discount: MoneyOut = Field(description="What the cart's promotion code took off the line.")


class PurchasePaymentOut(BaseModel):
    method: Literal["card", "bank_transfer", "gift_card"]


class PurchaseOut(BaseModel):
    """The answer to a checkout that placed an order (checkout/answers.py writes it, and a
    retry with the same Idempotency-Key gets it again byte for byte)."""

    id: str = Field(description="The order's id.")
    number: str = Field(description="The order number a buyer quotes.")
    status: str
    checkout_id: str
    total: MoneyOut
    tax: MoneyOut
    discount: MoneyOut = Field(description="What the cart's promotion code took off.")
    lines: list[PurchasedLineOut]
    payment: PurchasePaymentOut
    access_token: str | None = Field(
        description="A guest's secret for GET /store/orders/{id}?token=…; null for a customer."
    )


_PLACED: dict[int | str, dict[str, Any]] = {
    201: {"model": PurchaseOut, "description": "The order, placed"}
}


# Where the QueueDoor leaves the admission of a checkout it let in, for the route.
ADMISSION = "checkout_admission"
CHECKOUT_PATH = "/store/carts/{cart_id}/checkout"


class QueueDoor:
    """The waiting room's door, in front of the checkout route's middlewares, routing and
    body validation: in a flash sale most checkout requests are told to wait, and each such
    answer costs the shop the room's own work only, leaving its time to the checkouts let
    in. One let in goes on to the route; its place is given back when its answer is sent,
    and if the route refused the request before its checkout began (a malformed body, say),
    its ticket stays good, so a bad request changes nothing but its own wait."""

    def __init__(self, app: ASGIApp, room: WaitingRoom, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.room = room
        self.routes = routes
        self._route: RouteContext | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = path_pattern(CHECKOUT_PATH).fullmatch(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        try:
            admitted = await self.room.enter(found["cart_id"], header(scope, b"queue-ticket"))
        except ColonnadeError as refused:
            # Answered for the checkout route, as the middlewares around (those that count
            # requests by route) should know without looking for it among all the routes.
            scope["route"] = self._checkout_route(scope)
            await problem_response(refused.problem())(scope, receive, send)
            return
        scope.setdefault("state", {})[ADMISSION] = admitted
        try:
            await self.app(scope, receive, send)
        finally:
            await admitted.leave()

    def _checkout_route(self, scope: Scope) -> RouteContext | None:
        if self._route is None:
            self._route = next(
                (r for r in iter_route_contexts(self.routes) if r.matches(scope)[0] is Match.FULL),
                None,
            )
        return self._route


def router(checkout: CheckoutService) -> APIRouter:
    routes = APIRouter(tags=["checkout"])

    @routes.post(
        CHECKOUT_PATH,
        status_code=201,
        # The answer is the stored one (replayed as is), so it is documented, not re-validated.
        responses=_PLACED
        | refusals(
            IdempotencyKeyMissing,
            IdempotencyKeyReused,
            CheckoutInProgress,
            CART_NOT_FOUND,
            CartNotOpen,
            CartEmpty,
            UNKNOWN_SKU,
            OUT_OF_STOCK,
            UNKNOWN_MARKET,
            PRICE_MISSING,
            PaymentRefused,
            UNKNOWN_GIFT_CARD,
            INVALID_PAYMENT,
            CURRENCY_MISMATCH,
            INVALID_ORDER,
            CheckoutInterrupted,
            PROVIDER_UNAVAILABLE,
            *PROMOTION_REFUSALS,
            NothingToCharge,
            TotalChanged,
            CheckoutQueued,
            QueueTicketInvalid,
            QueueTicketExpired,
            QueueTicketUsed,
        ),
    )
    async def check_out(
        cart_id: str,
        body: CheckoutIn,
        # Required; its form is the checkout's own rule (idempotency_key_required).
        idempotency_key: Annotated[
            str,
            Header(
                alias="Idempotency-Key",
                json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
            ),
        ],
        request: Request,
        principal: Principal | None = Depends(optional_principal),
        # Read by the QueueDoor in front; declared here for the API's document.
        queue_ticket: Annotated[
            str | None,
            Header(
                alias="Queue-Ticket",
                max_length=2000,
                description="The ticket a 503 checkout_queued answer gave, once its wait is over.",
            ),
        ] = None,
    ) -> Response:
        """Buy the cart. Retrying with the same Idempotency-Key returns the first answer.
        When checkout is at capacity the answer is 503 `checkout_queued` with a ticket and
        Retry-After: repeat the same request with the header Queue-Ticket until let in."""
        admitted: Admission | None = getattr(request.state, ADMISSION, None)
        if admitted is not None:
            admitted.begin()
        outcome = await _check_out(cart_id, body, idempotency_key, principal)
        if outcome.status >= 400:
            return problem_response(outcome.body)
        return Response(
            orjson.dumps(outcome.body), status_code=outcome.status, media_type="application/json"
        )

    async def _check_out(
        cart_id: str, body: CheckoutIn, idempotency_key: str, principal: Principal | None
    ) -> Outcome:
        return await checkout.check_out(
            cart_id,
            idempotency_key,
            CheckoutRequest(
                email=body.email,
                shipping_address=body.shipping_address.model_dump(exclude_none=True),
                payment_method=body.payment.method,
                payment_token=None
                if isinstance(body.payment, BankTransferPayment)
                else body.payment.token,
                gift_card_code=body.payment.gift_card_code
                if isinstance(body.payment, GiftCardPayment)
                else None,
                customer_id=(
                    principal.subject
                    if principal is not None and principal.kind == CUSTOMER
                    else None
                ),
                promotion_code=body.promotion_code,
                expected_total=None if body.expected_total is None else body.expected_total.money(),
            ),
        )

    @routes.post(
        "/admin/orders/{order_id}/refund",
        tags=["orders"],
        responses=refusals(
            UnknownCurrency,
            ORDER_NOT_FOUND,
            NothingToRefund,
            UNKNOWN_PAYMENT,
            PAYMENT_STATE_CONFLICT,
            INVALID_AMOUNT,
            REFUND_EXCEEDS_CAPTURE,
            REFUND_KEY_REUSED,
            PROVIDER_REFUSED,
            PROVIDER_UNAVAILABLE,
            REFUND_EXCEEDS_PAYMENT,
            ILLEGAL_TRANSITION,
            ORDER_BUSY,
            InvalidRefund,
            INVALID_REFUND_LINES,
            LINE_NOT_ON_ORDER,
            REFUND_EXCEEDS_LINE,
        ),
    )
    async def refund_order(
        order_id: str,
        body: RefundIn,
        idempotency_key: Annotated[
            str, Header(alias="Idempotency-Key", pattern=REFUND_KEY_PATTERN)
        ],
        _: Principal = Depends(requires("orders:refund")),
    ) -> dict[str, object]:
        """Refund part or all of what an order paid, as an amount or by line; never more
        than was captured."""
        if (body.amount is None) == (body.lines is None):
            raise InvalidRefund
        if body.lines is not None:
            order = await checkout.refund_lines(
                order_id, [(line.sku, line.quantity) for line in body.lines], idempotency_key
            )
        else:
            assert body.amount is not None
            order = await checkout.refund_order(
                order_id, Money(body.amount.amount, body.amount.currency), idempotency_key
            )
        return {
            "id": order.id,
            "status": order.status.value,
            "paid": order.paid.as_dict(),
            "refunded": order.refunded.as_dict(),
        }

    return routes
