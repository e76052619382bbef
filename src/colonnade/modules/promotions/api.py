"""Promotions' staff routes: make a discount code, list them, see one with its uses, end one.

Thin: parse, authorize, call one service method. Every change is kept in the audit log, as
every staff write is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from colonnade.kernel.errors import DuplicateCurrency, UnknownCurrency
from colonnade.modules.promotions.service import (
    InvalidPromotion,
    InvalidPromotionCode,
    InvalidPromotionWindow,
    NewPromotion,
    Promotion,
    PromotionCodeTaken,
    PromotionNotFound,
    PromotionReport,
    PromotionsService,
    Target,
)
from colonnade.web.auth import requires
from colonnade.web.fields import (
    INTEGRAL,
    NOT_SPACE,
    Instant,
    MarketRef,
    PromotionCode,
    Sku,
    declared,
)
from colonnade.web.money import MoneyIn, MoneyOut
from colonnade.web.problems import refusals

READ = "promotions:read"
WRITE = "promotions:write"

# A SKU, a product's id or a category's slug (the promotion names them; the catalog places
# each cart line under them).
TargetRef = Annotated[StrictStr, declared(minLength=1, maxLength=100, pattern=NOT_SPACE)]
Limit = Annotated[StrictInt, declared(minimum=1, maximum=1_000_000_000), INTEGRAL]


class PromotionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PromotionCode | None = Field(
        default=None,
        description="What shoppers type: 3 to 40 letters, digits, '-' or '_'; any case. "
        "None: an automatic promotion, taken off every cart that qualifies (give a title).",
    )
    title: Annotated[StrictStr, declared(minLength=1, maxLength=200, pattern=r"\S")] | None = Field(
        default=None, description="What staff call it."
    )
    percent_off: Annotated[StrictInt, declared(minimum=1, maximum=100), INTEGRAL] | None = Field(
        default=None,
        description="Percent off the matching items (with buy/get: off each item got; 100 is "
        "free); or give amount_off instead.",
    )
    amount_off: list[MoneyIn] = Field(
        default_factory=list,
        max_length=200,
        description="A fixed amount off, one per currency; carts in other currencies get none.",
    )
    min_subtotal: list[MoneyIn] = Field(
        default_factory=list,
        max_length=200,
        description="The least a cart's subtotal must be, per currency (none: no minimum).",
    )
    markets: Annotated[list[MarketRef], declared(uniqueItems=True)] = Field(
        default_factory=list, max_length=50, description="Where it is offered (none: everywhere)."
    )
    customers_only: StrictBool = Field(
        default=False, description="Only for signed-in customers' carts."
    )
    usage_limit: Limit | None = Field(
        default=None, description="How many orders may use it in all (none: no limit)."
    )
    per_customer_limit: Limit | None = Field(
        default=None, description="How many orders each customer may use it for."
    )
    starts_at: Instant | None = Field(
        default=None, description="RFC 3339; when it starts by itself (none: now)."
    )
    ends_at: Instant | None = Field(
        default=None, description="RFC 3339; when it ends by itself (none: never)."
    )
    skus: Annotated[list[Sku], declared(uniqueItems=True)] = Field(
        default_factory=list, max_length=100, description="Takes off these SKUs."
    )
    products: Annotated[list[TargetRef], declared(uniqueItems=True)] = Field(
        default_factory=list, max_length=100, description="Takes off these products' variants."
    )
    categories: Annotated[list[TargetRef], declared(uniqueItems=True)] = Field(
        default_factory=list,
        max_length=100,
        description="Takes off products in these categories or below them. With no skus, "
        "products or categories it takes off the whole cart.",
    )
    buy_quantity: Annotated[StrictInt, declared(minimum=1, maximum=100), INTEGRAL] | None = Field(
        default=None,
        description="Buy X, get Y: of each buy_quantity + get_quantity matching items "
        "(dearest first), the get_quantity cheapest get percent_off.",
    )
    get_quantity: Annotated[StrictInt, declared(minimum=1, maximum=100), INTEGRAL] | None = Field(
        default=None, description="See buy_quantity."
    )
    combines: StrictBool = Field(
        default=False,
        description="Whether it applies together with other combinable promotions. One that "
        "does not is taken alone, when it takes off more than those together.",
    )
    first_order_only: StrictBool = Field(
        default=False,
        description="Only for a signed-in customer's first order (one not cancelled), once.",
    )


class UsesOut(BaseModel):
    currency: str
    uses: int = Field(description="Orders placed with the code, less cancelled ones.")
    discount: MoneyOut = Field(description="What the code took off them.")
    revenue: MoneyOut = Field(description="What their buyers paid.")


class PromotionOut(BaseModel):
    id: str
    code: str | None = Field(description="Null for an automatic promotion.")
    automatic: bool
    title: str | None
    percent_off: int | None
    amount_off: list[MoneyOut]
    min_subtotal: list[MoneyOut]
    markets: list[str]
    customers_only: bool
    usage_limit: int | None
    per_customer_limit: int | None
    used: int = Field(description="Uses held now: placed orders and checkouts under way.")
    starts_at: datetime
    ends_at: datetime | None
    skus: list[str]
    products: list[str]
    categories: list[str]
    buy_quantity: int | None
    get_quantity: int | None
    combines: bool
    first_order_only: bool

    @classmethod
    def of(cls, promotion: Promotion) -> PromotionOut:
        return cls(
            id=promotion.id,
            code=promotion.code,
            automatic=promotion.automatic,
            skus=list(promotion.target.skus),
            products=list(promotion.target.products),
            categories=list(promotion.target.categories),
            buy_quantity=promotion.buy_quantity,
            get_quantity=promotion.get_quantity,
            combines=promotion.combines,
            first_order_only=promotion.first_order,
            title=promotion.title,
            percent_off=promotion.percent_off,
            amount_off=[MoneyOut.of(m) for m in promotion.amount_off.values()],
            min_subtotal=[MoneyOut.of(m) for m in promotion.min_subtotal.values()],
            markets=list(promotion.markets),
            customers_only=promotion.customers_only,
            usage_limit=promotion.usage_limit,
            per_customer_limit=promotion.per_customer_limit,
            used=promotion.used,
            starts_at=promotion.starts_at,
            ends_at=promotion.ends_at,
        )


class PromotionReportOut(PromotionOut):
    uses: list[UsesOut] = Field(description="Its uses, with their discount and revenue.")
    codes: int = Field(description="Single-use codes made for it (colonnade promotions codes).")
    codes_used: int = Field(description="Of those, the ones orders hold.")

    @classmethod
    def of_report(cls, report: PromotionReport) -> PromotionReportOut:
        return cls(
            **dict(PromotionOut.of(report.promotion)),
            codes=report.codes,
            codes_used=report.codes_used,
            uses=[
                UsesOut(
                    currency=u.currency,
                    uses=u.uses,
                    discount=MoneyOut.of(u.discount),
                    revenue=MoneyOut.of(u.revenue),
                )
                for u in report.uses
            ],
        )


def router(promotions: PromotionsService) -> APIRouter:
    routes = APIRouter(tags=["promotions"])

    @routes.post(
        "/admin/promotions",
        status_code=status.HTTP_201_CREATED,
        dependencies=[Depends(requires(WRITE))],
        response_model=PromotionOut,
        responses=refusals(
            InvalidPromotionCode,
            InvalidPromotion,
            InvalidPromotionWindow,
            PromotionCodeTaken,
            UnknownCurrency,
            DuplicateCurrency,
        ),
    )
    async def create_promotion(body: PromotionIn) -> PromotionOut:
        """Make a promotion: a discount code, or (without a code) an automatic promotion; a
        percentage or fixed amounts off the cart or its matching items, or buy X get Y, in a
        window, with limits, combining with others or not."""
        made = await promotions.create(
            NewPromotion(
                code=body.code,
                title=body.title,
                percent_off=body.percent_off,
                amount_off=tuple(m.money() for m in body.amount_off),
                min_subtotal=tuple(m.money() for m in body.min_subtotal),
                markets=tuple(body.markets),
                customers_only=body.customers_only,
                usage_limit=body.usage_limit,
                per_customer_limit=body.per_customer_limit,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                target=Target(tuple(body.skus), tuple(body.products), tuple(body.categories)),
                buy_quantity=body.buy_quantity,
                get_quantity=body.get_quantity,
                combines=body.combines,
                first_order=body.first_order_only,
            )
        )
        return PromotionOut.of(made)

    @routes.get(
        "/admin/promotions",
        dependencies=[Depends(requires(READ))],
        response_model=list[PromotionOut],
    )
    async def list_promotions() -> list[PromotionOut]:
        """Every promotion, the latest to start first."""
        return [PromotionOut.of(p) for p in await promotions.promotions()]

    @routes.get(
        "/admin/promotions/{promotion_id}",
        dependencies=[Depends(requires(READ))],
        response_model=PromotionReportOut,
        responses=refusals(PromotionNotFound),
    )
    async def show_promotion(promotion_id: str) -> PromotionReportOut:
        """A promotion with its uses, discount and revenue per currency."""
        return PromotionReportOut.of_report(await promotions.report(promotion_id))

    @routes.post(
        "/admin/promotions/{promotion_id}/end",
        dependencies=[Depends(requires(WRITE))],
        response_model=PromotionOut,
        responses=refusals(PromotionNotFound),
    )
    async def end_promotion(promotion_id: str) -> PromotionOut:
        """End a promotion now; carts holding its code no longer get its discount."""
        return PromotionOut.of(await promotions.end(promotion_id))

    return routes
