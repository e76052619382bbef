"""Analytics' staff routes: what sold, from the warehouse. Thin: parse, authorize, ask."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from colonnade.modules.analytics.service import (
    CHECKOUT_ROUTE,
    AnalyticsService,
    CategorySales,
    Customers,
    Declines,
    Forecast,
    Funnel,
    Growth,
    InvalidForecastDay,
    InvalidInsightWindow,
    Moment,
    ProductSales,
    RevenueBucket,
    RouteLatency,
    SalesFigures,
    StockOut,
)
from colonnade.web.auth import requires
from colonnade.web.fields import Instant, MarketRef
from colonnade.web.money import MoneyOut
from colonnade.web.problems import refusals

READ = "insights:read"
FORECAST_MODEL = (
    "Holt-Winters exponential smoothing, additive daily season, over the last 28 days of paid "
    "orders by UTC hour"
)


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


class RevenueBucketOut(BaseModel):
    start: datetime = Field(description="The bucket's first moment (UTC); it lasts one step.")
    orders: int = Field(description="Paid orders placed in it.")
    revenue: list[MoneyOut] = Field(description="Their totals, one amount per currency.")

    @classmethod
    def of(cls, bucket: RevenueBucket) -> RevenueBucketOut:
        return cls(
            start=bucket.start,
            orders=bucket.orders,
            revenue=[MoneyOut.of(m) for m in bucket.revenue],
        )


class RevenueOut(BaseModel):
    every: str = Field(description="The step: hour or day.")
    buckets: list[RevenueBucketOut] = Field(description="Every step of the window, in order.")


class ProductSalesOut(BaseModel):
    sku: str
    units: int = Field(description="Units paid orders of the window bought.")
    revenue: MoneyOut = Field(
        description="What those lines cost after discounts (tax included where the market's "
        "prices include it)."
    )

    @classmethod
    def of(cls, sold: ProductSales) -> ProductSalesOut:
        return cls(sku=sold.sku, units=sold.units, revenue=MoneyOut.of(sold.revenue))


class ProductsOut(BaseModel):
    products: list[ProductSalesOut] = Field(
        description="Per SKU and currency, the most units first."
    )


class CategorySalesOut(BaseModel):
    category: str = Field(description="The category's slug; its sales include those below it.")
    units: int = Field(description="Units paid orders of the window bought of it.")
    revenue: MoneyOut = Field(description="What those lines cost after discounts.")

    @classmethod
    def of(cls, sold: CategorySales) -> CategorySalesOut:
        return cls(category=sold.category, units=sold.units, revenue=MoneyOut.of(sold.revenue))


class CategoriesOut(BaseModel):
    categories: list[CategorySalesOut] = Field(
        description="Per category and currency, the most units first. A SKU counts toward "
        "the category the catalog places it in now and every category above it."
    )


class GrowthOut(BaseModel):
    market: str
    category: str | None = Field(
        description="A category (with those below it); null: the whole market."
    )
    units: int = Field(description="Units paid orders bought in the week.")
    units_before: int = Field(description="Units paid orders bought in the week before.")
    percent: float | None = Field(
        description="The change in percent, to one decimal; null when the week before had none."
    )

    @classmethod
    def of(cls, grown: Growth) -> GrowthOut:
        percent = grown.percent
        return cls(
            market=grown.market,
            category=grown.category,
            units=grown.units,
            units_before=grown.units_before,
            percent=None if percent is None else float(percent),
        )


class GrowthReport(BaseModel):
    week_from: datetime = Field(description="The week's start; it ends at 'to'.")
    before_from: datetime = Field(description="The week before's start; it ends at week_from.")
    to: datetime
    rows: list[GrowthOut] = Field(
        description="Per market (its own row first), then per category in it by slug."
    )


class RefusedOut(BaseModel):
    code: str = Field(description="The problem a refused checkout answered with.")
    count: int


class FunnelOut(BaseModel):
    market: str
    carts: int = Field(description="Carts that got their first line in the window.")
    checkouts: int = Field(
        description="Checkouts decided in the window: orders placed and checkouts refused."
    )
    orders: int = Field(description="Orders placed in the window.")
    paid: int = Field(description="Of those orders, the ones paid.")
    conversion: float | None = Field(
        description="Paid orders per cart started, in percent to one decimal; null without carts."
    )
    refused: list[RefusedOut] = Field(description="Refused checkouts by code, the most first.")

    @classmethod
    def of(cls, funnel: Funnel) -> FunnelOut:
        conversion = funnel.conversion
        return cls(
            market=funnel.market,
            carts=funnel.carts,
            checkouts=funnel.checkouts,
            orders=funnel.orders,
            paid=funnel.paid,
            conversion=None if conversion is None else float(conversion),
            refused=[RefusedOut(code=code, count=count) for code, count in funnel.refused],
        )


class FunnelReport(BaseModel):
    markets: list[FunnelOut] = Field(description="Per market, in order.")


class DeclineOut(BaseModel):
    reason: str = Field(description="The payment provider's reason; unknown when it gave none.")
    count: int
    percent: float = Field(
        description="Of the checkouts that asked for payment, in percent to one decimal."
    )


class DeclinesOut(BaseModel):
    asked: int = Field(
        description="Checkouts in the window that asked for payment: orders placed and "
        "checkouts declined."
    )
    declined: int
    reasons: list[DeclineOut] = Field(description="By reason, the most first.")

    @classmethod
    def of(cls, declines: Declines) -> DeclinesOut:
        return cls(
            asked=declines.asked,
            declined=declines.declined,
            reasons=[
                DeclineOut(reason=d.reason, count=d.count, percent=float(d.percent))
                for d in declines.reasons
            ],
        )


class CustomersOut(BaseModel):
    market: str
    customers: int = Field(description="Customers who placed paid orders in the window.")
    new: int = Field(description="Of those, the ones whose first paid order it was.")
    returning: int = Field(description="Of those, the ones who had paid orders before.")
    customer_orders: int = Field(description="Paid orders placed by customers.")
    guest_orders: int = Field(
        description="Paid orders placed by guests (an erased customer's count here too)."
    )

    @classmethod
    def of(cls, found: Customers) -> CustomersOut:
        return cls(
            market=found.market,
            customers=found.customers,
            new=found.new,
            returning=found.returning,
            customer_orders=found.customer_orders,
            guest_orders=found.guest_orders,
        )


class CustomersReport(BaseModel):
    markets: list[CustomersOut] = Field(description="Per market, in order.")


class RouteOut(BaseModel):
    route: str = Field(description="Method and route template, as the metrics name it.")
    requests: int
    errors: int = Field(description="Answers with a server error (5xx).")
    error_percent: float = Field(description="Server errors per request, in percent.")
    p50_ms: float | None = Field(description="Latency percentiles in milliseconds, to 0.1 ms.")
    p95_ms: float | None
    p99_ms: float | None
    p95_ms_before: float | None = Field(
        description="The p95 in the window of the same length before: the trend; null when "
        "the route answered nothing then."
    )

    @classmethod
    def of(cls, route: RouteLatency) -> RouteOut:
        return cls(
            route=route.route,
            requests=route.requests,
            errors=route.errors,
            error_percent=float(route.error_percent),
            p50_ms=_ms(route.p50),
            p95_ms=_ms(route.p95),
            p99_ms=_ms(route.p99),
            p95_ms_before=_ms(route.p95_before),
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class RoutesOut(BaseModel):
    routes: list[RouteOut] = Field(description="The slowest by p95 first.")


class MarketOrdersOut(BaseModel):
    market: str
    orders: int = Field(description="Paid orders placed in the step.")


class OutcomeOut(BaseModel):
    outcome: str = Field(description="As colonnade_checkouts_total names it (paid, ...).")
    count: int


class MomentOut(BaseModel):
    start: datetime = Field(description="The step's first moment (UTC).")
    orders: list[MarketOrdersOut] = Field(description="Per market, by code.")
    requests: int = Field(description="The route's requests, every process's.")
    errors: int = Field(description="The route's server errors (5xx).")
    p99_ms: float | None = Field(description="The route's p99 latency in ms; null: no request.")
    checkouts: list[OutcomeOut] = Field(description="Checkouts finished, per outcome.")
    outbox_lag_seconds: float | None = Field(
        description="The outbox's highest lag in the step; null when no process told it."
    )
    pool_in_use: int | None = Field(
        description="Database connections in use at the most in one minute, every process's."
    )
    pool_size: int | None = Field(description="The pools' size (before overflow), together.")

    @classmethod
    def of(cls, moment: Moment) -> MomentOut:
        return cls(
            start=moment.start,
            orders=[MarketOrdersOut(market=m, orders=n) for m, n in moment.orders],
            requests=moment.requests,
            errors=moment.errors,
            p99_ms=_ms(moment.p99),
            checkouts=[OutcomeOut(outcome=o, count=n) for o, n in moment.checkouts],
            outbox_lag_seconds=moment.outbox_lag,
            pool_in_use=moment.pool_in_use,
            pool_size=moment.pool_size,
        )


class TimelineOut(BaseModel):
    every: str = Field(description="The step: minute, hour or day.")
    route: str = Field(description="The route followed.")
    moments: list[MomentOut] = Field(description="Every step of the window, in order.")


class ForecastHourOut(BaseModel):
    start: datetime = Field(description="The hour's first moment (UTC).")
    orders: float = Field(description="Paid orders predicted in it, to one decimal.")


class ForecastOut(BaseModel):
    market: str
    orders: float = Field(description="Paid orders predicted over the day.")
    peak: datetime | None = Field(description="The busiest hour predicted; null for none.")
    backtest_error_percent: float | None = Field(
        description="How far the same model was off on the last day it knows (the absolute "
        "errors over the orders, in percent); null when that day had no orders."
    )
    history_hours: int = Field(description="Hours of history the model was fitted on.")
    hours: list[ForecastHourOut] = Field(description="Every hour of the day, in order.")

    @classmethod
    def of(cls, forecast: Forecast) -> ForecastOut:
        error = forecast.backtest_error
        return cls(
            market=forecast.market,
            orders=float(forecast.orders),
            peak=forecast.peak,
            backtest_error_percent=None if error is None else float(error),
            history_hours=forecast.history_hours,
            hours=[ForecastHourOut(start=at, orders=float(n)) for at, n in forecast.hours],
        )


class ForecastsOut(BaseModel):
    day: date = Field(description="The day forecast (UTC).")
    model: str = Field(description="How: the model and what it was fitted on.")
    markets: list[ForecastOut] = Field(description="Per market with enough history, in order.")
    too_little_history: list[str] = Field(
        description="Markets with orders but less than three days of them: not forecast."
    )


class StockOutOut(BaseModel):
    sku: str
    sold_out_at: datetime = Field(description="When its last available unit was taken.")
    back_at: datetime | None = Field(
        description="When staff restocked it; null while it is still sold out."
    )
    sold_out_seconds: int = Field(description="How long it was out (until now while still out).")
    units_before: int = Field(
        description="Units paid orders bought of it in the hours before it sold out."
    )
    lost_units: float = Field(
        description="Sales lost, estimated: that demand's rate over the time out (one decimal)."
    )
    lost_revenue: list[MoneyOut] = Field(
        description="What those sales would have brought at the prices paid before, per currency."
    )

    @classmethod
    def of(cls, out: StockOut) -> StockOutOut:
        return cls(
            sku=out.sku,
            sold_out_at=out.began,
            back_at=out.ended,
            sold_out_seconds=int(out.out_for.total_seconds()),
            units_before=out.units_before,
            lost_units=float(out.lost_units),
            lost_revenue=[MoneyOut.of(m) for m in out.lost_revenue],
        )


class StockOutsOut(BaseModel):
    hours_before: int = Field(description="How many hours before each stock-out demand is read.")
    stock_outs: list[StockOutOut] = Field(
        description="SKUs that sold out in the window, the most sales lost first."
    )


Start = Annotated[Instant, Query(alias="from", description="The window's start (included).")]
End = Annotated[Instant, Query(alias="to", description="The window's end (excluded).")]
Market = Annotated[MarketRef | None, Query(description="One market; all without.")]


def router(analytics: AnalyticsService) -> APIRouter:
    routes = APIRouter(tags=["insights"])

    @routes.get("/admin/insights/sales", responses=refusals(InvalidInsightWindow))
    async def sales_insight(
        start: Start,
        end: End,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> SalesOut:
        """Paid orders placed in [from, to): how many, their revenue and what was refunded of
        them, per currency. Includes the last purchase: facts not yet in the warehouse's
        files are counted too."""
        return SalesOut.of(await analytics.sales(start, end, market))

    @routes.get("/admin/insights/revenue", responses=refusals(InvalidInsightWindow))
    async def revenue_insight(
        start: Start,
        end: End,
        every: Annotated[
            Literal["hour", "day"], Query(description="The step; hours for a week at most.")
        ] = "day",
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> RevenueOut:
        """Paid orders placed in [from, to) and their revenue per currency, by UTC hour or day:
        every step of the window, empty ones too, so it charts as it is."""
        buckets = await analytics.revenue(start, end, every, market)
        return RevenueOut(every=every, buckets=[RevenueBucketOut.of(b) for b in buckets])

    @routes.get("/admin/insights/products", responses=refusals(InvalidInsightWindow))
    async def products_insight(
        start: Start,
        end: End,
        market: Market = None,
        limit: Annotated[int, Query(ge=1, le=100, description="How many rows.")] = 10,
        _: object = Depends(requires(READ)),
    ) -> ProductsOut:
        """What paid orders placed in [from, to) bought, per SKU and currency, the most units
        first."""
        sold = await analytics.top_products(start, end, market, limit)
        return ProductsOut(products=[ProductSalesOut.of(p) for p in sold])

    @routes.get("/admin/insights/categories", responses=refusals(InvalidInsightWindow))
    async def categories_insight(
        start: Start,
        end: End,
        market: Market = None,
        limit: Annotated[int, Query(ge=1, le=100, description="How many rows.")] = 10,
        _: object = Depends(requires(READ)),
    ) -> CategoriesOut:
        """What paid orders placed in [from, to) bought, per category and currency, the most
        units first; a category's figures include the categories below it."""
        sold = await analytics.top_categories(start, end, market, limit)
        return CategoriesOut(categories=[CategorySalesOut.of(c) for c in sold])

    @routes.get("/admin/insights/funnel", responses=refusals(InvalidInsightWindow))
    async def funnel_insight(
        start: Start,
        end: End,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> FunnelReport:
        """The conversion funnel per market: carts that got their first line in [from, to),
        checkouts decided in it (refusals by code), orders placed and the orders paid."""
        funnels = await analytics.funnel(start, end, market)
        return FunnelReport(markets=[FunnelOut.of(f) for f in funnels])

    @routes.get("/admin/insights/declines", responses=refusals(InvalidInsightWindow))
    async def declines_insight(
        start: Start,
        end: End,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> DeclinesOut:
        """Payments declined in [from, to) by the provider's reason, each as a share of the
        checkouts that asked for payment."""
        return DeclinesOut.of(await analytics.declines(start, end, market))

    @routes.get("/admin/insights/forecast", responses=refusals(InvalidForecastDay))
    async def forecast_insight(
        day: Annotated[
            date | None, Query(description="The day to forecast (UTC); tomorrow without.")
        ] = None,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> ForecastsOut:
        """Paid orders per hour of a coming day, per market, predicted by a seasonal model
        (Holt-Winters, a daily season) from the last four weeks by hour, with the error the
        same model made on the last day it knows."""
        start, forecasts, too_little = await analytics.forecast(day, market)
        return ForecastsOut(
            day=start.date(),
            model=FORECAST_MODEL,
            markets=[ForecastOut.of(f) for f in forecasts],
            too_little_history=too_little,
        )

    @routes.get("/admin/insights/routes", responses=refusals(InvalidInsightWindow))
    async def routes_insight(
        start: Start,
        end: End,
        limit: Annotated[int, Query(ge=1, le=100, description="How many rows.")] = 10,
        _: object = Depends(requires(READ)),
    ) -> RoutesOut:
        """The routes answered in [from, to), the slowest by p95 first: requests, server
        errors, latency percentiles, and the p95 of the window of the same length before.
        Every process of the shop keeps what it answered per minute."""
        found = await analytics.slowest_routes(start, end, limit)
        return RoutesOut(routes=[RouteOut.of(r) for r in found])

    @routes.get("/admin/insights/timeline", responses=refusals(InvalidInsightWindow))
    async def timeline_insight(
        start: Start,
        end: End,
        every: Annotated[
            Literal["minute", "hour", "day"],
            Query(description="The step; minutes for a day at most, hours for a week."),
        ] = "minute",
        market: Market = None,
        route: Annotated[
            str,
            Query(
                min_length=1,
                max_length=200,
                description="The route to follow, as /admin/insights/routes names it.",
            ),
        ] = CHECKOUT_ROUTE,
        _: object = Depends(requires(READ)),
    ) -> TimelineOut:
        """Paid orders placed per market beside what the shop's machinery did meanwhile, by
        UTC minute, hour or day over [from, to): the route's requests, server errors and p99
        (the checkout's unless another is named), checkouts finished per outcome, the outbox's
        highest lag and the database connections in use, every process's. "The checkout's
        p99 rose while DE orders doubled" reads off one answer."""
        moments = await analytics.timeline(start, end, every, market, route)
        return TimelineOut(every=every, route=route, moments=[MomentOut.of(m) for m in moments])

    @routes.get("/admin/insights/customers", responses=refusals(InvalidInsightWindow))
    async def customers_insight(
        start: Start,
        end: End,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> CustomersReport:
        """Who bought the paid orders placed in [from, to), per market: customers new and
        returning, and the orders of customers and of guests. The warehouse knows customers
        only by pseudonyms; an erased customer's pseudonym names nobody."""
        found = await analytics.customers(start, end, market)
        return CustomersReport(markets=[CustomersOut.of(c) for c in found])

    @routes.get("/admin/insights/stock-outs", responses=refusals(InvalidInsightWindow))
    async def stock_outs_insight(
        start: Start,
        end: End,
        market: Market = None,
        hours_before: Annotated[
            int,
            Query(ge=1, le=168, description="Hours before a stock-out its demand is read over."),
        ] = 1,
        _: object = Depends(requires(READ)),
    ) -> StockOutsOut:
        """SKUs that sold out in [from, to): when, until staff restocked them (or still), and
        the sales lost while out, estimated from what paid orders (of one market or all)
        bought of each in the hours before it sold out."""
        outs = await analytics.stock_outs(start, end, market, timedelta(hours=hours_before))
        return StockOutsOut(hours_before=hours_before, stock_outs=[StockOutOut.of(o) for o in outs])

    @routes.get("/admin/insights/growth", responses=refusals(InvalidInsightWindow))
    async def growth_insight(
        end: Annotated[
            Instant | None,
            Query(alias="to", description="The end of the week looked at; now without."),
        ] = None,
        market: Market = None,
        _: object = Depends(requires(READ)),
    ) -> GrowthReport:
        """Week-over-week demand: units paid orders placed in the 7 days before `to` bought,
        against the 7 days before those, per market and per category in each market."""
        report = await analytics.growth(end, market)
        return GrowthReport(
            week_from=report.week_from,
            before_from=report.before_from,
            to=report.to,
            rows=[GrowthOut.of(g) for g in report.rows],
        )

    return routes
