"""The storefront's cart routes: thin, they parse and call one service method.

A guest's cart is addressed by an unguessable id, so these routes ask for no scope. A cart
opened with a customer's bearer token belongs to that customer: it answers only to their
token, and to anyone else it does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.cart.domain import (
    CartClosed,
    CartFull,
    CartNotFound,
    InvalidQuantity,
    InvalidSku,
    Limits,
    LineNotFound,
    UnknownSku,
)
from colonnade.modules.cart.service import CartService, CartView, PromotionNotOnCart
from colonnade.modules.promotions.service import REFUSALS as PROMOTION_REFUSALS
from colonnade.modules.promotions.service import Offer
from colonnade.web.auth import optional_principal
from colonnade.web.fields import INTEGRAL, MarketCode, PromotionCode, Sku, declared
from colonnade.web.money import MoneyOut
from colonnade.web.problems import refusals

# Another module's refusals a cart passes on: pricing knows markets and prices.
UNKNOWN_MARKET = (422, "unknown_market")
PRICE_MISSING = (409, "price_missing")


class OpenCart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    market: MarketCode = Field(description="Market code, such as US; sets currency and taxes.")


# The shop's carts keep the domain's limits (CartService is built with them).
MAX_QUANTITY = Limits().max_quantity


class AddLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku = Field(description="The variant's SKU.")
    quantity: Annotated[StrictInt, declared(minimum=1, maximum=MAX_QUANTITY), INTEGRAL] = Field(
        default=1, description="Units to add to the line; a line holds at most this many."
    )


class SetQuantity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[StrictInt, declared(minimum=0, maximum=MAX_QUANTITY), INTEGRAL] = Field(
        description="Units the line should hold; 0 removes it."
    )


class ApplyPromotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PromotionCode = Field(description="The discount code, in any case.")


class CartLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut = Field(description="What the line costs, its discount taken off.")
    tax: MoneyOut
    discount: MoneyOut = Field(description="What promotions take off the line.")
    compare_at: MoneyOut | None = Field(
        description="The unit's price before a running sale lowered it; null when none does."
    )


class PromotionRefusalOut(BaseModel):
    code: str = Field(description="Why the code takes nothing off, such as promotion_expired.")
    detail: str


class CartPromotionOut(BaseModel):
    code: str
    applied: bool = Field(description="Whether it takes its discount off the cart now.")
    refusal: PromotionRefusalOut | None = Field(
        description="Why not, when it does not; checkout refuses the cart with this problem."
    )


class CartOfferOut(BaseModel):
    id: str | None = Field(description="The promotion's id; null for a code that names none.")
    code: str | None = Field(description="Its code; null for an automatic promotion.")
    name: str = Field(description="Its code, or an automatic promotion's title.")
    applied: bool = Field(description="Whether it takes something off the cart now.")
    discount: MoneyOut = Field(description="What it takes off the cart.")
    reason: PromotionRefusalOut | None = Field(
        description="Why it takes nothing off, when it does not (such as "
        "promotion_minimum_not_met, or promotion_not_combinable when others take off more)."
    )


class CartOut(BaseModel):
    id: str
    market: str
    currency: str
    status: str
    lines: list[CartLineOut]
    subtotal: MoneyOut = Field(description="The lines' totals, discounts taken off.")
    discount: MoneyOut = Field(description="What promotions take off the cart.")
    tax: MoneyOut
    total: MoneyOut
    tax_inclusive: bool = Field(description="Whether prices and totals already include tax.")
    promotion: CartPromotionOut | None = Field(description="The code the cart holds, if any.")
    promotions: list[CartOfferOut] = Field(
        description="The promotions that apply (automatic ones and the code), then those the "
        "cart qualifies for or holds that take nothing off, each with why."
    )

    @classmethod
    def of(cls, cart: CartView) -> CartOut:
        held = cart.promotion
        return cls(
            id=cart.id,
            market=cart.market,
            currency=cart.currency,
            status=cart.status.value,
            lines=[
                CartLineOut(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=MoneyOut.of(line.unit_price),
                    line_total=MoneyOut.of(line.line_total),
                    tax=MoneyOut.of(line.tax),
                    discount=MoneyOut.of(line.discount),
                    compare_at=None if line.compare_at is None else MoneyOut.of(line.compare_at),
                )
                for line in cart.lines
            ],
            subtotal=MoneyOut.of(cart.subtotal),
            discount=MoneyOut.of(cart.discount),
            tax=MoneyOut.of(cart.tax),
            total=MoneyOut.of(cart.total),
            tax_inclusive=cart.tax_inclusive,
            promotion=None
            if held is None
            else CartPromotionOut(
                code=held.code,
                applied=held.applied,
                refusal=None
                if held.refusal is None
                else PromotionRefusalOut(code=held.refusal.code, detail=held.refusal.detail),
            ),
            promotions=[] if cart.offer is None else _offers(cart.offer, cart.currency),
        )


def _offers(offer: Offer, currency: str) -> list[CartOfferOut]:
    zero = MoneyOut.of(Money.zero(currency))
    return [
        *(
            CartOfferOut(
                id=t.promotion_id,
                code=t.single_code or t.code,
                name=t.name,
                applied=True,
                discount=MoneyOut.of(t.discount),
                reason=None,
            )
            for t in offer.taken
        ),
        *(
            CartOfferOut(
                id=p.promotion_id,
                code=p.code,
                name=p.name,
                applied=False,
                discount=zero,
                reason=PromotionRefusalOut(code=p.reason.code, detail=p.reason.detail),
            )
            for p in offer.passed
        ),
    ]


CUSTOMER = "customer"


async def shopper(principal: Principal | None = Depends(optional_principal)) -> str | None:
    """The signed-in customer's id; None for a guest (staff and integrations shop as guests)."""
    return principal.subject if principal is not None and principal.kind == CUSTOMER else None


def router(carts: CartService) -> APIRouter:
    routes = APIRouter(tags=["cart"])

    @routes.post(
        "/store/carts",
        status_code=status.HTTP_201_CREATED,
        response_model=CartOut,
        responses=refusals(UNKNOWN_MARKET),
    )
    async def open_cart(body: OpenCart, customer: str | None = Depends(shopper)) -> CartOut:
        """Open an empty cart in a market; with a customer's token it is theirs alone."""
        return CartOut.of(await carts.create(body.market, customer))

    @routes.get(
        "/store/carts/{cart_id}",
        response_model=CartOut,
        responses=refusals(CartNotFound, PRICE_MISSING),
    )
    async def show_cart(cart_id: str, customer: str | None = Depends(shopper)) -> CartOut:
        """The cart, priced now in its market."""
        return CartOut.of(await carts.cart(cart_id, customer))

    @routes.post(
        "/store/carts/{cart_id}/lines",
        response_model=CartOut,
        responses=refusals(
            CartNotFound,
            CartClosed,
            UnknownSku,
            InvalidSku,
            InvalidQuantity,
            CartFull,
            PRICE_MISSING,
        ),
    )
    async def add_line(
        cart_id: str, body: AddLine, customer: str | None = Depends(shopper)
    ) -> CartOut:
        """Add units of a SKU; a SKU already in the cart grows its line."""
        return CartOut.of(await carts.add_line(cart_id, body.sku, body.quantity, customer))

    @routes.patch(
        "/store/carts/{cart_id}/lines/{sku}",
        response_model=CartOut,
        responses=refusals(
            CartNotFound, CartClosed, LineNotFound, InvalidSku, InvalidQuantity, PRICE_MISSING
        ),
    )
    async def set_quantity(
        cart_id: str, sku: Sku, body: SetQuantity, customer: str | None = Depends(shopper)
    ) -> CartOut:
        """Set how many units a line holds; 0 removes the line."""
        return CartOut.of(await carts.set_quantity(cart_id, sku, body.quantity, customer))

    @routes.delete(
        "/store/carts/{cart_id}/lines/{sku}",
        response_model=CartOut,
        responses=refusals(CartNotFound, CartClosed, LineNotFound, InvalidSku, PRICE_MISSING),
    )
    async def remove_line(
        cart_id: str, sku: Sku, customer: str | None = Depends(shopper)
    ) -> CartOut:
        """Take a line out of the cart."""
        return CartOut.of(await carts.remove_line(cart_id, sku, customer))

    @routes.post(
        "/store/carts/{cart_id}/promotions",
        response_model=CartOut,
        responses=refusals(CartNotFound, CartClosed, PRICE_MISSING, *PROMOTION_REFUSALS),
    )
    async def apply_promotion(
        cart_id: str, body: ApplyPromotion, customer: str | None = Depends(shopper)
    ) -> CartOut:
        """Enter a discount code (in place of any the cart held): the cart with its discount,
        or the code's own refusal (unknown, not started, ended, used up...)."""
        return CartOut.of(await carts.apply_promotion(cart_id, body.code, customer))

    @routes.delete(
        "/store/carts/{cart_id}/promotions/{code}",
        response_model=CartOut,
        responses=refusals(CartNotFound, CartClosed, PromotionNotOnCart, PRICE_MISSING),
    )
    async def remove_promotion(
        cart_id: str, code: str, customer: str | None = Depends(shopper)
    ) -> CartOut:
        """Take the discount code off the cart."""
        return CartOut.of(await carts.remove_promotion(cart_id, code, customer))

    return routes
