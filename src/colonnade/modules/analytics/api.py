"""Analytics' staff routes: what sold, from the warehouse. Thin: parse, authorize, ask."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from colonnade.modules.analytics.service import (
    AnalyticsService,
    InvalidInsightWindow,
    SalesFigures,
)
from colonnade.web.auth import requires
from colonnade.web.fields import Instant, MarketRef
from colonnade.web.money import MoneyOut
from colonnade.web.problems import refusals

READ = "insights:read"


class SalesOut(BaseModel):
    orders: int = Field(description="Paid orders placed in the window.")
    revenue: list[MoneyOut] = Field(
        description="What their buyers paid (order totals, tax included, before refunds), "
        "one amount per currency."
    )
    refunded: list[MoneyOut] = Field(
        description="What has been refunded of those orders so far, one amount per currency."
    )

    @classmethod
    def of(cls, figures: SalesFigures) -> SalesOut:
        return cls(
            orders=figures.orders,
            revenue=[MoneyOut.of(m) for m in figures.revenue],
            refunded=[MoneyOut.of(m) for m in figures.refunded],
        )


def router(analytics: AnalyticsService) -> APIRouter:
    routes = APIRouter(tags=["insights"])

    @routes.get("/admin/insights/sales", responses=refusals(InvalidInsightWindow))
    async def sales_insight(
        start: Annotated[
            Instant, Query(alias="from", description="The window's start (included).")
        ],
        end: Annotated[Instant, Query(alias="to", description="The window's end (excluded).")],
        market: Annotated[MarketRef | None, Query(description="One market; all without.")] = None,
        _: object = Depends(requires(READ)),
    ) -> SalesOut:
        """Paid orders placed in [from, to): how many, their revenue and what was refunded of
        them, per currency. Includes the last purchase: facts not yet in the warehouse's
        files are counted too."""
        return SalesOut.of(await analytics.sales(start, end, market))

    return routes
