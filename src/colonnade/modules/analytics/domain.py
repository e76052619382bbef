"""Analytics' rules: which facts an event or an order gives, and what a sales window is.

A fact is one thing that happened to an order, in minor units of its currency, to a cart on
its way to one (its first line; a refused checkout), or to a SKU's stock. Facts name orders,
markets, amounts, SKUs and refusals, and a buyer only by a pseudonym: no buyer's e-mail,
name, address, customer or cart id ever becomes one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.histograms import quantile
from colonnade.kernel.money import Money
from colonnade.kernel.placements import Placement

PLACED = "order_placed"
LINE = "order_line"
PAID = "order_paid"
REFUNDED = "order_refunded"
CART_STARTED = "cart_started"
CHECKOUT_REFUSED = "checkout_refused"
STOCK_OUT = "stock_out"
RESTOCK = "restock"

# The refusal a declined payment gives.
DECLINED = "payment_declined"
# The longest reason a fact keeps (as its table does).
REASON_LENGTH = 120

# How fine a series may be, and the longest window each may span.
EVERY = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
LONGEST_SERIES = {
    "minute": timedelta(days=1),
    "hour": timedelta(days=7),
    "day": timedelta(days=366),
}

# How far before a stock-out its demand is measured, by default and at most.
DEMAND_BEFORE = timedelta(hours=1)
LONGEST_DEMAND_BEFORE = timedelta(days=7)

# The longest window one question may span: a year and a day covers a year-on-year look.
LONGEST_WINDOW = timedelta(days=366)
# Growth compares the week before a moment with the week before that.
WEEK = timedelta(days=7)

# What paid orders' lines bought: (market, sku, currency, units, revenue).
LineSales = tuple[str, str, str, int, int]


@dataclass(frozen=True)
class Fact:
    """One thing that happened to an order. `id` names it so that the same happening told
    twice (a redelivered event) is the same fact."""

    id: str
    kind: str
    occurred_at: datetime
    # The order a fact is of, its market and amount; "" and 0 for facts of no order.
    order_id: str = ""
    market: str = ""
    currency: str = ""
    amount: int = 0
    units: int = 0
    # The SKU a line fact is of; "" for the others.
    sku: str = ""
    # A refused checkout's problem code and its reason (a decline's), "" for the others.
    code: str = ""
    reason: str = ""
    # A placement's buyer as a pseudonym; "" for a guest, an erased customer and the others.
    customer: str = ""

    @property
    def day(self) -> str:
        return self.occurred_at.astimezone(UTC).date().isoformat()


@dataclass(frozen=True)
class SalesFigures:
    """Paid orders placed in a window: how many, what their buyers paid (order totals, tax
    included, before refunds) and what has been refunded of them, one amount per currency."""

    orders: int
    revenue: tuple[Money, ...]
    refunded: tuple[Money, ...]


def placed_fact(
    order_id: str,
    placed_at: datetime,
    market: str,
    total: Mapping[str, Any],
    units: int,
    customer: str = "",
) -> Fact:
    return Fact(
        id=f"{PLACED}:{order_id}",
        kind=PLACED,
        occurred_at=placed_at,
        order_id=order_id,
        market=market,
        currency=str(total["currency"]),
        amount=int(total["amount"]),
        units=units,
        customer=customer,
    )


def line_facts(
    order_id: str,
    placed_at: datetime,
    market: str,
    lines: Sequence[Mapping[str, Any]],
) -> list[Fact]:
    """A fact per line: its SKU, units and what it cost after discounts (`line_total`: tax
    included where the market's prices include it)."""
    return [
        Fact(
            id=f"{LINE}:{order_id}:{index}",
            kind=LINE,
            occurred_at=placed_at,
            order_id=order_id,
            market=market,
            currency=str(line["line_total"]["currency"]),
            amount=int(line["line_total"]["amount"]),
            units=int(line["quantity"]),
            sku=str(line["sku"]),
        )
        for index, line in enumerate(lines)
    ]


def paid_fact(order_id: str, at: datetime, amount: Mapping[str, Any]) -> Fact:
    return Fact(
        id=f"{PAID}:{order_id}",
        kind=PAID,
        occurred_at=at,
        order_id=order_id,
        currency=str(amount["currency"]),
        amount=int(amount["amount"]),
    )


def refunded_fact(order_id: str, at: datetime, amount: Mapping[str, Any], which: str) -> Fact:
    """A refund; `which` tells it from the order's other refunds (the event's: the order's
    refunded total after it)."""
    return Fact(
        id=f"{REFUNDED}:{order_id}:{which}",
        kind=REFUNDED,
        occurred_at=at,
        order_id=order_id,
        currency=str(amount["currency"]),
        amount=int(amount["amount"]),
    )


def cart_started_fact(
    cart_id: str, at: datetime, market: str, units: int, told_by: str | None = None
) -> Fact:
    """A cart got its first lines: the funnel's first step. Told by the change that started
    it (`told_by`, that change's event; a cart emptied and filled again starts again), or,
    for events written before a change said whether it started its cart, by every change:
    one per cart then (the id is the cart's). The cart's id itself is not kept."""
    return Fact(
        id=f"{CART_STARTED}:{cart_id}" + (f":{told_by}" if told_by else ""),
        kind=CART_STARTED,
        occurred_at=at,
        market=market,
        units=units,
    )


def checkout_refused_fact(
    checkout_id: str, at: datetime, market: str | None, code: str, reason: str | None
) -> Fact:
    return Fact(
        id=f"{CHECKOUT_REFUSED}:{checkout_id}",
        kind=CHECKOUT_REFUSED,
        occurred_at=at,
        market=market or "",
        code=code,
        reason=(reason or "")[:REASON_LENGTH],
    )


def stock_out_fact(event_id: str, sku: str, at: datetime) -> Fact:
    """The SKU's last available unit was taken (one fact per event that told it)."""
    return Fact(
        id=f"{STOCK_OUT}:{event_id}",
        kind=STOCK_OUT,
        occurred_at=at,
        sku=sku,
    )


def restock_fact(event_id: str, sku: str, at: datetime, available: int) -> Fact:
    """Staff set the SKU's stock and `available` units can be sold again."""
    return Fact(
        id=f"{RESTOCK}:{event_id}",
        kind=RESTOCK,
        occurred_at=at,
        units=available,
        sku=sku,
    )


def units_of(lines: Iterable[Mapping[str, Any]]) -> int:
    return sum(int(line["quantity"]) for line in lines)


class InvalidInsightWindow(InvalidInput):
    code = "invalid_insight_window"

    def __init__(self, detail: str, start: datetime, end: datetime) -> None:
        super().__init__(detail, field="to", **{"from": start.isoformat(), "to": end.isoformat()})


def sales_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC; InvalidInsightWindow when it is empty, backwards or longer than
    LONGEST_WINDOW."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInsightWindow("give both ends of the window with their offset", start, end)
    if end <= start:
        raise InvalidInsightWindow("'to' must come after 'from'", start, end)
    if end - start > LONGEST_WINDOW:
        raise InvalidInsightWindow(f"a window spans at most {LONGEST_WINDOW.days} days", start, end)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class RevenueBucket:
    """Paid orders placed in [start, start + the series' step), and their revenue."""

    start: datetime
    orders: int
    revenue: tuple[Money, ...]


@dataclass(frozen=True)
class ProductSales:
    """What paid orders of a window bought of one SKU in one currency."""

    sku: str
    units: int
    revenue: Money


def series_window(start: datetime, end: datetime, every: str) -> tuple[datetime, datetime]:
    """[start, end) for a series by `every`: as sales_window, but hours for a week at most."""
    start, end = sales_window(start, end)
    if end - start > LONGEST_SERIES[every]:
        raise InvalidInsightWindow(
            f"a series by {every} spans at most {LONGEST_SERIES[every].days} days", start, end
        )
    return start, end


def steps(start: datetime, end: datetime, every: str) -> list[datetime]:
    """Every bucket's start in [start, end) by `every` (UTC), the first holding `start`."""
    step = EVERY[every]
    moment = datetime.fromtimestamp(
        start.timestamp() // step.total_seconds() * step.total_seconds(), UTC
    )
    found = []
    while moment < end:
        found.append(moment)
        moment += step
    return found


def series(
    start: datetime, end: datetime, every: str, rows: Sequence[tuple[int, str, int, int]]
) -> list[RevenueBucket]:
    """Every bucket of [start, end) by `every` (UTC hours or days, the first holding `start`),
    from (bucket start in epoch seconds, currency, orders, revenue) rows; empty buckets too."""
    found: dict[datetime, list[tuple[str, int, int]]] = defaultdict(list)
    for bucket, currency, orders, revenue in rows:
        found[datetime.fromtimestamp(bucket, UTC)].append((currency, orders, revenue))
    buckets = []
    for moment in steps(start, end, every):
        shown = sorted(found.get(moment, []))
        buckets.append(
            RevenueBucket(
                start=moment,
                orders=sum(orders for _, orders, _ in shown),
                revenue=tuple(Money(revenue, currency) for currency, _, revenue in shown),
            )
        )
    return buckets


def figures(rows: Sequence[tuple[str, int, int, int]]) -> SalesFigures:
    """Figures from (currency, orders, revenue, refunded) per currency, currencies in order."""
    ordered = sorted(rows)
    return SalesFigures(
        orders=sum(count for _, count, _, _ in ordered),
        revenue=tuple(Money(revenue, currency) for currency, _, revenue, _ in ordered),
        refunded=tuple(Money(refunded, currency) for currency, _, _, refunded in ordered),
    )


@dataclass(frozen=True)
class CategorySales:
    """What paid orders of a window bought of one category (and those below it) in one
    currency."""

    category: str
    units: int
    revenue: Money


def by_category(
    rows: Iterable[LineSales], placed: Mapping[str, Placement], limit: int
) -> list[CategorySales]:
    """The lines' units and revenue per category and currency, the most units first (then
    the most revenue, then by slug and currency). A SKU counts toward its category and every
    category above it, as the catalog places it now; a SKU in no category counts nowhere."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _, sku, currency, units, revenue in rows:
        for category in placed.get(sku, ("", frozenset()))[1]:
            total = totals[(category, currency)]
            total[0] += units
            total[1] += revenue
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return [
        CategorySales(category, units, Money(revenue, currency))
        for (category, currency), (units, revenue) in ranked[:limit]
    ]


@dataclass(frozen=True)
class Growth:
    """Demand (units paid orders bought) of one market, or of one category in it, in a week
    and in the week before; `percent` is the change, None when the week before had none."""

    market: str
    category: str | None
    units: int
    units_before: int

    @property
    def percent(self) -> Decimal | None:
        return _percent(self.units - self.units_before, self.units_before)


@dataclass(frozen=True)
class WeekOverWeek:
    """Demand in [week_from, to) against [before_from, week_from)."""

    before_from: datetime
    week_from: datetime
    to: datetime
    rows: tuple[Growth, ...]


def growth(
    week: Iterable[LineSales], before: Iterable[LineSales], placed: Mapping[str, Placement]
) -> list[Growth]:
    """Week-over-week demand per market, and per category in each market (a SKU counts
    toward its category and those above it): markets in order, each market's own row first,
    then its categories by slug."""
    units: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for which, rows in enumerate((week, before)):
        for market, sku, _, sold, _ in rows:
            units[(market, None)][which] += sold
            for category in placed.get(sku, ("", frozenset()))[1]:
                units[(market, category)][which] += sold
    return [
        Growth(market, category, now, then)
        for (market, category), (now, then) in sorted(
            units.items(), key=lambda kv: (kv[0][0], kv[0][1] is not None, kv[0][1] or "")
        )
    ]


def growth_window(end: datetime) -> tuple[datetime, datetime, datetime]:
    """The start of the week before `end`, of the week before that, and `end`, in UTC."""
    if end.tzinfo is None:
        raise InvalidInsightWindow("give the end of the week with its offset", end - WEEK, end)
    end = end.astimezone(UTC)
    return end - 2 * WEEK, end - WEEK, end


# What the warehouse counts of checkouts in a window: (market, kind, code, reason, facts,
# paid), kind CART_STARTED, PLACED or CHECKOUT_REFUSED; `paid` counts placed orders paid.
OutcomeCount = tuple[str, str, str, str, int, int]


@dataclass(frozen=True)
class Funnel:
    """One market's carts on their way to a paid order in a window: carts that got their
    first line, checkouts decided (orders placed and checkouts refused), orders placed, and
    those paid; `refused` counts the refusals by problem code, the most first."""

    market: str
    carts: int
    checkouts: int
    orders: int
    paid: int
    refused: tuple[tuple[str, int], ...]

    @property
    def conversion(self) -> Decimal | None:
        """Paid orders per cart started, in percent to one decimal; None without carts."""
        return _percent(self.paid, self.carts)


@dataclass(frozen=True)
class Decline:
    reason: str
    count: int
    # Of the checkouts that asked for payment, in percent to one decimal.
    percent: Decimal


@dataclass(frozen=True)
class Declines:
    """Payments declined in a window by reason, against the checkouts that asked for payment
    (orders placed and checkouts declined)."""

    asked: int
    declined: int
    reasons: tuple[Decline, ...]


def funnels(rows: Iterable[OutcomeCount]) -> list[Funnel]:
    """Each market's funnel, markets in order."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    refused: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for market, kind, code, _, facts, paid in rows:
        counts[market][kind] += facts
        counts[market]["paid"] += paid
        if kind == CHECKOUT_REFUSED:
            refused[market][code] += facts
    return [
        Funnel(
            market=market,
            carts=found[CART_STARTED],
            checkouts=found[PLACED] + found[CHECKOUT_REFUSED],
            orders=found[PLACED],
            paid=found["paid"],
            refused=_most_first(refused[market]),
        )
        for market, found in sorted(counts.items())
    ]


def declines(rows: Iterable[OutcomeCount]) -> Declines:
    """Declines by reason (a decline without one counts as "unknown"), the most first."""
    placed = 0
    by_reason: dict[str, int] = defaultdict(int)
    for _, kind, code, reason, facts, _ in rows:
        if kind == PLACED:
            placed += facts
        elif kind == CHECKOUT_REFUSED and code == DECLINED:
            by_reason[reason or "unknown"] += facts
    declined = sum(by_reason.values())
    asked = placed + declined
    return Declines(
        asked=asked,
        declined=declined,
        reasons=tuple(
            Decline(reason, count, _percent(count, asked) or Decimal(0))
            for reason, count in _most_first(by_reason)
        ),
    )


def _most_first(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return _tenths(Decimal(100 * part) / whole)


# A stock-out as the warehouse finds it, with what paid orders bought of its SKU in one
# currency in the time before it: (sku, sold out at, back at or None, currency or "" when
# nothing sold, units, revenue).
StockOutRow = tuple[str, datetime, datetime | None, str, int, int]


@dataclass(frozen=True)
class StockOut:
    """A SKU sold out from `began` until `ended` (None: still), `out_for` long (until now
    while still out). Its demand is what paid orders bought of it in `demand_before` before
    it sold out; the sales lost are an estimate: that demand's rate over the time out."""

    sku: str
    began: datetime
    ended: datetime | None
    out_for: timedelta
    units_before: int
    lost_units: Decimal
    lost_revenue: tuple[Money, ...]


def demand_window(before: timedelta) -> timedelta:
    if not timedelta(0) < before <= LONGEST_DEMAND_BEFORE:
        raise InvalidInput(
            f"demand is measured over at most {LONGEST_DEMAND_BEFORE.days} days before a "
            "stock-out, and over some time",
            field="hours_before",
        )
    return before


def stock_outs(rows: Iterable[StockOutRow], now: datetime, before: timedelta) -> list[StockOut]:
    """Each stock-out with its estimated lost sales, the most units lost first (then the
    earliest, then by SKU)."""
    found: dict[tuple[str, datetime], tuple[datetime | None, dict[str, tuple[int, int]]]] = {}
    for sku, began, ended, currency, units, revenue in rows:
        _, sold = found.setdefault((sku, began), (ended, {}))
        if currency:
            sold[currency] = (units, revenue)
    outs = []
    for (sku, began), (ended, sold) in found.items():
        out_for = max((ended or now) - began, timedelta(0))
        share = Decimal(out_for.total_seconds()) / Decimal(before.total_seconds())
        units = sum(u for u, _ in sold.values())
        outs.append(
            StockOut(
                sku=sku,
                began=began,
                ended=ended,
                out_for=out_for,
                units_before=units,
                lost_units=_tenths(units * share),
                lost_revenue=tuple(
                    Money(int((revenue * share).to_integral_value(ROUND_HALF_UP)), currency)
                    for currency, (_, revenue) in sorted(sold.items())
                ),
            )
        )
    return sorted(outs, key=lambda o: (-o.lost_units, o.began, o.sku))


@dataclass(frozen=True)
class Customers:
    """One market's buyers of the paid orders placed in a window: customers (known by their
    pseudonyms), those whose first paid order it was, and the orders of customers and of
    guests (an erased customer's orders count as a guest's)."""

    market: str
    customers: int
    new: int
    customer_orders: int
    guest_orders: int

    @property
    def returning(self) -> int:
        return self.customers - self.new


@dataclass(frozen=True)
class RouteMinute:
    """What one process answered on one route (method and template) in one minute: requests,
    server errors, and per latency bucket (upper bound in seconds, inf for the last) how many
    answers took that long: only the buckets that hold any."""

    minute: datetime
    process: str
    route: str
    requests: int
    errors: int
    buckets: tuple[tuple[float, int], ...]


# What a process reads of the shop's machinery each minute (SystemMinute.measure).
CHECKOUTS = "checkouts"
OUTBOX_LAG = "outbox_lag_seconds"
POOL_IN_USE = "pool_in_use"
POOL_SIZE = "pool_size"


@dataclass(frozen=True)
class SystemMinute:
    """One process's reading of one measure in one minute: CHECKOUTS finished (`label`: their
    outcome), the OUTBOX_LAG at its highest, database connections in use at the most
    (POOL_IN_USE) and the pool's size (POOL_SIZE)."""

    minute: datetime
    process: str
    measure: str
    label: str
    value: float


@dataclass(frozen=True)
class Moment:
    """One step of the timeline: paid orders placed per market beside what the shop's
    machinery did meanwhile, the route's requests, server errors and p99 (seconds), checkouts
    per outcome, the outbox's highest lag (seconds) and the database connections in use at
    the most, all processes together (None: no process told)."""

    start: datetime
    orders: tuple[tuple[str, int], ...]
    requests: int
    errors: int
    p99: float | None
    checkouts: tuple[tuple[str, int], ...]
    outbox_lag: float | None
    pool_in_use: int | None
    pool_size: int | None


# Rows the warehouse answers a timeline from: (step start in epoch seconds, market, paid
# orders); (step start, requests, errors, bucket bound or None, answers); (step start,
# measure, label, value).
OrdersAt = tuple[int, str, int]
RouteAt = tuple[int, int, int, float | None, int]
MeasureAt = tuple[int, str, str, float]


def timeline(
    start: datetime,
    end: datetime,
    every: str,
    orders: Iterable[OrdersAt],
    route: Iterable[RouteAt],
    measures: Iterable[MeasureAt],
) -> list[Moment]:
    """Every step of [start, end) by `every`, empty ones too."""
    sold: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for at, market, count in orders:
        sold[at].append((market, count))
    answered: dict[int, list[Any]] = defaultdict(lambda: [0, 0, []])
    for at, requests, errors, le, answers in route:
        found = answered[at]
        if le is None:
            found[0] += requests
            found[1] += errors
        elif answers:
            found[2].append((le, answers))
    read: dict[int, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for at, measure, label, value in measures:
        read[at][measure].append((label, value))
    moments = []
    for moment in steps(start, end, every):
        at = int(moment.timestamp())
        requests, errors, buckets = answered.get(at, (0, 0, []))
        told = read.get(at, {})
        moments.append(
            Moment(
                start=moment,
                orders=tuple(sorted(sold.get(at, []))),
                requests=requests,
                errors=errors,
                p99=percentile(0.99, sorted(buckets)),
                checkouts=tuple(sorted((label, int(v)) for label, v in told.get(CHECKOUTS, []))),
                outbox_lag=_one(told.get(OUTBOX_LAG)),
                pool_in_use=_whole(_one(told.get(POOL_IN_USE))),
                pool_size=_whole(_one(told.get(POOL_SIZE))),
            )
        )
    return moments


def _one(values: Sequence[tuple[str, float]] | None) -> float | None:
    return None if not values else max(value for _, value in values)


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


@dataclass(frozen=True)
class RouteLatency:
    """A route's traffic in a window: requests, server errors, latency percentiles in seconds
    (None without requests), and its p95 in the window of the same length before."""

    route: str
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    p95_before: float | None

    @property
    def error_percent(self) -> Decimal:
        return _percent(self.errors, self.requests) or Decimal(0)


def percentile(q: float, buckets: Iterable[tuple[float, int]]) -> float | None:
    """The q-th percentile of per-bucket counts (upper bound, answers in that bucket)."""
    cumulative, below = [], 0
    for bound, count in sorted(buckets):
        below += count
        cumulative.append((bound, float(below)))
    return quantile(q, cumulative)


# What the warehouse sums of a route in a window: (route, later, requests, errors, buckets),
# `later` telling the window from the one before it.
RouteCount = tuple[str, bool, int, int, tuple[tuple[float, int], ...]]


def slowest(rows: Iterable[RouteCount], limit: int) -> list[RouteLatency]:
    """The routes of the window (later) by p95, the slowest first (then by route), each with
    its p95 of the window before."""
    now: dict[str, tuple[int, int, tuple[tuple[float, int], ...]]] = {}
    before: dict[str, tuple[tuple[float, int], ...]] = {}
    for route, later, requests, errors, buckets in rows:
        if later:
            now[route] = (requests, errors, buckets)
        else:
            before[route] = buckets
    found = [
        RouteLatency(
            route=route,
            requests=requests,
            errors=errors,
            p50=percentile(0.5, buckets),
            p95=percentile(0.95, buckets),
            p99=percentile(0.99, buckets),
            p95_before=percentile(0.95, before.get(route, ())),
        )
        for route, (requests, errors, buckets) in now.items()
    ]
    found.sort(key=lambda r: (-(r.p95 or 0.0), r.route))
    return found[:limit]


# A forecast's season is a day of hours; its model needs two of them to fit and one more to
# be checked against, and reads at most HISTORY back. It looks a week ahead at most.
SEASON_HOURS = 24
LEAST_HISTORY_HOURS = 3 * SEASON_HOURS
HISTORY = timedelta(days=28)
LONGEST_AHEAD = timedelta(days=7)
HOUR = timedelta(hours=1)


class InvalidForecastDay(InvalidInput):
    code = "invalid_forecast_day"

    def __init__(self, day: date, today: date) -> None:
        super().__init__(
            f"a forecast is for a day from tomorrow to {LONGEST_AHEAD.days} days ahead",
            field="day",
            day=day.isoformat(),
            today=today.isoformat(),
        )


def forecast_day(day: date | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the day asked for (tomorrow without one)."""
    today = now.astimezone(UTC).date()
    asked = day or today + timedelta(days=1)
    if not today < asked <= today + LONGEST_AHEAD:
        raise InvalidForecastDay(asked, today)
    start = datetime.combine(asked, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


def hourly(counts: Mapping[datetime, int], start: datetime, end: datetime) -> list[float]:
    """Every hour of [start, end) with its count, 0 for an hour with none."""
    series = []
    moment = start
    while moment < end:
        series.append(float(counts.get(moment, 0)))
        moment += HOUR
    return series


def since_first(series: Sequence[float]) -> list[float]:
    """The series from the start of the day of its first non-zero hour: hours before a market
    sold anything are not its history."""
    first = next((i for i, value in enumerate(series) if value), None)
    return [] if first is None else list(series[first - first % SEASON_HOURS :])


def backtest_error(actual: Sequence[float], predicted: Sequence[float]) -> Decimal | None:
    """How far `predicted` was from `actual`: the absolute errors' sum over the actual sum, in
    percent to one decimal (weighted, so quiet hours do not dominate); None without orders."""
    total = sum(actual)
    if total <= 0:
        return None
    error = sum(abs(a - p) for a, p in zip(actual, predicted, strict=True))
    return _tenths(Decimal(str(error)) * 100 / Decimal(str(total)))


@dataclass(frozen=True)
class Forecast:
    """One market's paid orders per hour of a coming day, as its history predicts them, with
    how far the same model was off on the last day of that history (`backtest_error`)."""

    market: str
    hours: tuple[tuple[datetime, Decimal], ...]
    backtest_error: Decimal | None
    history_hours: int

    @property
    def orders(self) -> Decimal:
        return sum((orders for _, orders in self.hours), Decimal(0))

    @property
    def peak(self) -> datetime | None:
        return max(self.hours, key=lambda hour: hour[1])[0] if self.orders else None


def rounded(values: Iterable[float]) -> list[Decimal]:
    return [_tenths(Decimal(str(value))) for value in values]


def _tenths(value: Decimal) -> Decimal:
    """To one decimal, half up: how the insights show shares, estimates and forecasts."""
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
