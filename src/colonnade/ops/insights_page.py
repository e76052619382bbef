"""What sold, for staff at /ops/insights, with the operations pages' session: paid orders of a
window with their revenue and refunds per currency, revenue and orders per day as charts,
orders per market hour by hour beside the checkout's p99 and the outbox's lag, the products
and categories bought most, the funnel from cart to paid order per market, payment
declines by reason, customers new and returning, and what sold out with the sales lost
meanwhile. The page reads without scripts (figures and tables are written into it); its script
only draws the charts, from the same figures the page carries as JSON data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Annotated

import orjson
from babel.numbers import format_currency
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from colonnade.kernel.clock import Clock
from colonnade.kernel.errors import ColonnadeError, InvalidInput
from colonnade.kernel.money import Money
from colonnade.modules.analytics.service import (
    AnalyticsService,
    Forecast,
    Funnel,
    Moment,
    RevenueBucket,
    RouteLatency,
    StockOut,
)
from colonnade.modules.identity.service import IdentityService
from colonnade.ops.session import NO_STORE, page_reader, template, to_login

SCOPE = "insights:read"
# A window the form leaves open: the last week, today included.
DEFAULT_DAYS = 7


def router(identity: IdentityService, analytics: AnalyticsService, clock: Clock) -> APIRouter:
    routes = APIRouter(tags=["operations"])
    page = template("insights.html")

    @routes.get("/ops/insights", include_in_schema=False)
    async def insights(
        request: Request,
        first: Annotated[str | None, Query(alias="from")] = None,
        last: Annotated[str | None, Query(alias="to")] = None,
        market: Annotated[str | None, Query()] = None,
    ) -> Response:
        if await page_reader(identity, request, SCOPE) is None:
            return to_login()
        today = clock.now().date()
        market = (market or "").strip().upper() or None
        error = ""
        try:
            start_day = _day(first, today - timedelta(days=DEFAULT_DAYS - 1), "from")
            end_day = _day(last, today, "to")
            start, end = _midnight(start_day), _midnight(end_day + timedelta(days=1))
            sales = await analytics.sales(start, end, market)
            days = await analytics.revenue(start, end, "day", market)
            products = await analytics.top_products(start, end, market, 10)
            categories = await analytics.top_categories(start, end, market, 10)
            funnels, declines = await analytics.checkouts(start, end, market)
            outs = await analytics.stock_outs(start, end, market)
            buyers = await analytics.customers(start, end, market)
            slowest = await analytics.slowest_routes(start, end, 10)
            moments = await analytics.timeline(start, end, _every(start, end), market)
            _, forecasts, _ = await analytics.forecast(None, market)
        except ColonnadeError as refused:
            error, status = refused.detail, refused.status
            start_day, end_day = today - timedelta(days=DEFAULT_DAYS - 1), today
            sales, days, products, categories = None, [], [], []
            funnels, declines, outs, buyers, slowest, forecasts = [], None, [], [], [], []
            moments = []
        else:
            status = 200
        body = page.substitute(
            error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "",
            first=start_day.isoformat(),
            last=end_day.isoformat(),
            market=escape(market or "", quote=True),
            orders="\u2014" if sales is None else f"{sales.orders:,}",
            revenue=_amounts(() if sales is None else sales.revenue),
            refunded=_amounts(() if sales is None else sales.refunded),
            product_rows="\n".join(
                f"<tr><td>{escape(p.sku)}</td><td>{p.units:,}</td>"
                f"<td>{escape(_money(p.revenue))}</td></tr>"
                for p in products
            )
            or '<tr><td colspan="3">Nothing sold in this window.</td></tr>',
            category_rows="\n".join(
                f"<tr><td>{escape(c.category)}</td><td>{c.units:,}</td>"
                f"<td>{escape(_money(c.revenue))}</td></tr>"
                for c in categories
            )
            or '<tr><td colspan="3">Nothing of a category sold in this window.</td></tr>',
            funnel_rows="\n".join(_funnel_row(f) for f in funnels)
            or '<tr><td colspan="6">No cart started in this window.</td></tr>',
            declined="\u2014" if declines is None else f"{declines.declined:,}",
            asked="\u2014" if declines is None else f"{declines.asked:,}",
            decline_rows="\n".join(
                f"<tr><td>{escape(d.reason)}</td><td>{d.count:,}</td><td>{d.percent}%</td></tr>"
                for d in (() if declines is None else declines.reasons)
            )
            or '<tr><td colspan="3">No payment declined in this window.</td></tr>',
            customer_rows="\n".join(
                f'<tr data-market="{escape(c.market, quote=True)}"><td>{escape(c.market)}</td>'
                f"<td>{c.customers:,}</td><td>{c.new:,}</td><td>{c.returning:,}</td>"
                f"<td>{c.guest_orders:,}</td></tr>"
                for c in buyers
            )
            or '<tr><td colspan="5">No paid order in this window.</td></tr>',
            forecast_rows="\n".join(_forecast_row(f) for f in forecasts)
            or '<tr><td colspan="4">Too little history to forecast tomorrow.</td></tr>',
            route_rows="\n".join(_route_row(r) for r in slowest)
            or '<tr><td colspan="5">No route answered in this window.</td></tr>',
            stock_out_rows="\n".join(_stock_out_row(o) for o in outs)
            or '<tr><td colspan="6">Nothing sold out in this window.</td></tr>',
            # Script text is not HTML-decoded: JSON's own escape keeps "</script>" out of it.
            chart_data=orjson.dumps(_chart(days, moments)).decode().replace("<", "\\u003c"),
        )
        return HTMLResponse(body, status_code=status, headers=NO_STORE)

    return routes


def _day(text: str | None, default: date, field: str) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"'{field}' is a date such as 2026-11-27", field=field) from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _money(money: Money) -> str:
    return format_currency(money.to_decimal(), money.currency, locale="en_US")


def _amounts(amounts: tuple[Money, ...]) -> str:
    if not amounts:
        return "<li>\u2014</li>"
    return "\n".join(
        f'<li data-currency="{escape(m.currency, quote=True)}">{escape(_money(m))}</li>'
        for m in amounts
    )


def _funnel_row(funnel: Funnel) -> str:
    conversion = "\u2014" if funnel.conversion is None else f"{funnel.conversion}%"
    refused = ", ".join(f"{escape(code)} {count:,}" for code, count in funnel.refused) or "\u2014"
    return (
        f'<tr data-market="{escape(funnel.market, quote=True)}"><td>{escape(funnel.market)}</td>'
        f"<td>{funnel.carts:,}</td><td>{funnel.checkouts:,}</td><td>{funnel.paid:,}</td>"
        f"<td>{conversion}</td><td>{refused}</td></tr>"
    )


def _forecast_row(forecast: Forecast) -> str:
    peak = "\u2014" if forecast.peak is None else f"{forecast.peak:%H:%M}"
    error = "\u2014" if forecast.backtest_error is None else f"{forecast.backtest_error}%"
    return (
        f'<tr data-market="{escape(forecast.market, quote=True)}">'
        f"<td>{escape(forecast.market)}</td><td>{forecast.orders}</td><td>{peak}</td>"
        f"<td>{error}</td></tr>"
    )


def _route_row(route: RouteLatency) -> str:
    def ms(seconds: float | None) -> str:
        return "\u2014" if seconds is None else f"{seconds * 1000:,.1f}"

    return (
        f"<tr><td>{escape(route.route)}</td><td>{route.requests:,}</td>"
        f"<td>{route.error_percent}%</td><td>{ms(route.p95)}</td><td>{ms(route.p95_before)}</td>"
        "</tr>"
    )


def _stock_out_row(out: StockOut) -> str:
    back = "still out" if out.ended is None else f"{out.ended:%Y-%m-%d %H:%M}"
    lost = ", ".join(_money(m) for m in out.lost_revenue) or "\u2014"
    return (
        f'<tr data-sku="{escape(out.sku, quote=True)}"><td>{escape(out.sku)}</td>'
        f"<td>{out.began:%Y-%m-%d %H:%M}</td><td>{back}</td>"
        f"<td>{str(out.out_for).split('.')[0]}</td><td>{out.lost_units}</td>"
        f"<td>{escape(lost)}</td></tr>"
    )


def _every(start: datetime, end: datetime) -> str:
    """The timeline's step: hours while they stay readable (a week), else days."""
    return "hour" if end - start <= timedelta(days=7) else "day"


def _chart(days: list[RevenueBucket], moments: list[Moment]) -> dict[str, object]:
    """Per day (epoch seconds): paid orders, and revenue per currency in major units. Per
    step of the timeline: paid orders per market, the checkout's p99 in ms and the outbox's
    highest lag in seconds (null where no process told them)."""
    currencies = sorted({m.currency for bucket in days for m in bucket.revenue})
    markets = sorted({market for moment in moments for market, _ in moment.orders})
    return {
        "steps": [int(moment.start.timestamp()) for moment in moments],
        "markets": {
            market: [dict(moment.orders).get(market, 0) for moment in moments] for market in markets
        },
        "machinery": {
            "checkout p99 ms": [None if m.p99 is None else round(m.p99 * 1000, 1) for m in moments],
            "outbox lag s": [m.outbox_lag for m in moments],
        },
        "days": [int(bucket.start.timestamp()) for bucket in days],
        "orders": [bucket.orders for bucket in days],
        "revenue": {
            currency: [
                float(next((m.to_decimal() for m in b.revenue if m.currency == currency), 0))
                for b in days
            ]
            for currency in currencies
        },
    }
