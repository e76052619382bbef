"""The checkout route: thin; the saga lives in the service.

With a customer's bearer token the checkout is theirs: it may buy their own cart, and the
order is placed for them. Without one it is a guest's, who may buy only guest carts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictInt

from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.checkout.service import CheckoutRequest, CheckoutService
from colonnade.web.auth import optional_principal, requires
from colonnade.web.problems import problem_response


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


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["card", "bank_transfer", "gift_card"]
    token: str | None = Field(
        default=None,
        pattern=r"^tok_[A-Za-z0-9_]{1,64}$",
        description=(
            "a card processor's token (card numbers never reach Colonnade); with a gift card, "
            "the card that pays what the gift card does not cover"
        ),
    )
    gift_card_code: str | None = Field(default=None, max_length=64)


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    shipping_address: Address
    payment: PaymentIn


CUSTOMER = "customer"


def router(checkout: CheckoutService) -> APIRouter:
    routes = APIRouter(tags=["checkout"])

    @routes.post(
        "/store/carts/{cart_id}/checkout",
        status_code=201,
        responses={
            402: {"description": "payment declined"},
            409: {"description": "out of stock, or the cart is closed"},
            422: {"description": "invalid input or a reused Idempotency-Key"},
            503: {"description": "the payment provider did not answer"},
        },
    )
    async def check_out(
        cart_id: str,
        body: CheckoutIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        principal: Principal | None = Depends(optional_principal),
    ) -> Response:
        """Buy the cart. Retrying with the same Idempotency-Key returns the first answer."""
        outcome = await checkout.check_out(
            cart_id,
            idempotency_key,
            CheckoutRequest(
                email=str(body.email),
                shipping_address=body.shipping_address.model_dump(exclude_none=True),
                payment_method=body.payment.method,
                payment_token=body.payment.token,
                gift_card_code=body.payment.gift_card_code,
                customer_id=(
                    principal.subject
                    if principal is not None and principal.kind == CUSTOMER
                    else None
                ),
            ),
        )
        if outcome.status >= 400:
            return problem_response(outcome.body)
        return Response(
            orjson.dumps(outcome.body), status_code=outcome.status, media_type="application/json"
        )

    @routes.post("/admin/orders/{order_id}/refund", tags=["orders"])
    async def refund_order(
        order_id: str,
        body: RefundIn,
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=8)],
        _: Principal = Depends(requires("orders:refund")),
    ) -> dict[str, object]:
        """Refund part or all of what an order paid; never more than was captured."""
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
