"""The analytics warehouse at Black Friday scale: how fast facts come in, how fast questions
are answered.

    python -m bench.insights                  # 10,000,000 facts over 90 days, SQLite and PostgreSQL
    python -m bench.insights --quick          # 1,000,000 facts, a short ingestion

Answers: what GET /admin/insights/sales, /revenue, /products, /categories and /growth (their
lines), /funnel and /declines, /customers, /stock-outs, /forecast (its history) and /timeline
run, over synthetic facts written as the sealing writes them (one file per day), and a week of
two processes' route minutes and readings for the timeline, for a day, a week and the whole
range, each asked three times (the best is quoted: the first pays for the page cache).
Ingestion: synthetic OrderPlaced and OrderPaid events taken in batches of 200 (the relay's) and
1,000 (a consumer catching up) by the
analytics consumer as the shop wires it (`AnalyticsService.record` behind the inbox's guard,
the batch's marks and facts in one transaction), then sealed into
Parquet (`AnalyticsService.seal`), on each database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress
from rich.table import Table

from bench.report import RESULTS, console
from bench.shop import admin_execute, dsn_of
from colonnade import migrations
from colonnade.kernel import inbox
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.modules.analytics.service import (
    CHECKOUT_ROUTE,
    AnalyticsService,
    RouteMinute,
    SystemMinute,
)
from colonnade.modules.analytics.warehouse import SCHEMA, Warehouse
from colonnade.modules.orders.events import OrderPaid, OrderPlaced

TARGET_ANSWER_SECONDS = 2.0
TARGET_FACTS_PER_SECOND = 50_000
DAYS = 90
FIRST_DAY = datetime(2026, 9, 1, tzinfo=UTC)
MARKETS = [("US", "USD"), ("DE", "EUR"), ("JP", "JPY")]
PROCESSES = ("web-1", "web-2")
ROUTES = (
    CHECKOUT_ROUTE,
    "GET /store/products",
    "GET /store/products/{product_id}",
    "POST /store/carts",
    "POST /store/carts/{cart_id}/lines",
)
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
# Events a consumer takes in one transaction: the embedded relay's batch (200), and a
# consumer catching up on a backlog in bigger fetches.
CONSUMER_BATCHES = (200, 1000)


@dataclass(frozen=True)
class Answer:
    question: str
    facts: int
    best_seconds: float
    rows: int


@dataclass(frozen=True)
class Ingestion:
    database: str
    batch: int
    facts: int
    record_per_second: float
    seal_per_second: float


def fact(
    fact_id: str,
    kind: str,
    at: datetime,
    order: str = "",
    market: str = "",
    currency: str = "",
    amount: int = 0,
    units: int = 0,
    sku: str = "",
    code: str = "",
    reason: str = "",
    customer: str = "",
) -> tuple[Any, ...]:
    """A fact's row, its columns in SCHEMA's order."""
    return (fact_id, kind, at, order, market, currency, amount, units, sku, code, reason, customer)


def write_facts(root: Path, count: int) -> int:
    """About `count` facts, one file per day as a sealing writes them; how many were written.
    Per order: its cart started, its placement, a line and its payment (one in twenty refunded
    in part); one checkout in twenty refused (half of them declined); and each day some SKUs
    sell out, most of them restocked within hours."""
    rng = random.Random(11)
    per_day = count // DAYS // 4
    written = 0
    with Progress(console=console) as progress:
        task = progress.add_task("writing facts", total=DAYS)
        for day in range(DAYS):
            midnight = FIRST_DAY + timedelta(days=day)
            rows: list[tuple[Any, ...]] = []
            for _ in range(per_day):
                order = str(uuid.UUID(int=rng.getrandbits(128)))
                at = midnight + timedelta(seconds=rng.randrange(86_400))
                market, currency = MARKETS[rng.randrange(len(MARKETS))]
                amount = rng.randrange(500, 50_000)
                sku = f"SKU-{rng.randrange(2000):04d}"
                started = at - timedelta(minutes=5)
                paid_at = at + timedelta(seconds=1)
                rows += [
                    fact(f"cart_started:{order}", "cart_started", started, "", market, units=2),
                    fact(
                        f"placed:{order}",
                        "order_placed",
                        at,
                        order,
                        market,
                        currency,
                        amount,
                        2,
                        customer=f"c{rng.randrange(per_day * 10)}",
                    ),
                    fact(
                        f"line:{order}:0", "order_line", at, order, market, currency, amount, 2, sku
                    ),
                    fact(f"paid:{order}", "order_paid", paid_at, order, "", currency, amount),
                ]
                if rng.random() < 0.05:
                    back = at + timedelta(hours=1)
                    rows.append(
                        fact(
                            f"refunded:{order}",
                            "order_refunded",
                            back,
                            order,
                            "",
                            currency,
                            amount // 2,
                        )
                    )
                if rng.random() < 0.05:
                    declined = rng.random() < 0.5
                    code = "payment_declined" if declined else "out_of_stock"
                    why = rng.choice(["card_declined", "insufficient_funds"]) if declined else ""
                    rows.append(
                        fact(
                            f"refused:{order}",
                            "checkout_refused",
                            at,
                            "",
                            market,
                            code=code,
                            reason=why,
                        )
                    )
            for out in range(20):
                sku = f"SKU-{rng.randrange(2000):04d}"
                at = midnight + timedelta(seconds=rng.randrange(86_400))
                rows.append(fact(f"stock_out:{day}:{out}", "stock_out", at, sku=sku))
                if rng.random() < 0.8:
                    back = at + timedelta(hours=3)
                    rows.append(fact(f"restock:{day}:{out}", "restock", back, units=50, sku=sku))
            columns = {name: [row[i] for row in rows] for i, name in enumerate(SCHEMA.names)}
            directory = root / "facts" / f"day={midnight.date().isoformat()}"
            directory.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(columns, schema=SCHEMA), directory / f"part-{day}.parquet")
            written += len(columns["id"])
            progress.advance(task)
    return written


def write_system(root: Path, first: datetime, days: int) -> int:
    """`days` of what PROCESSES shop processes tell each minute: every ROUTES route's answers
    (about 40 a minute, in six latency buckets), checkouts per outcome, the outbox's lag and
    the pool; how many rows were written."""
    rng = random.Random(12)
    written = 0
    with Progress(console=console) as progress:
        task = progress.add_task("writing route minutes", total=days * len(PROCESSES))
        for day in range(days):
            midnight = first + timedelta(days=day)
            for process in PROCESSES:
                minutes, readings = [], []
                for at in (midnight + timedelta(minutes=m) for m in range(1440)):
                    for route in ROUTES:
                        answers = [rng.randrange(1, 12) for _ in LATENCY_BOUNDS]
                        minutes.append(
                            RouteMinute(
                                at,
                                process,
                                route,
                                sum(answers),
                                0,
                                tuple(zip(LATENCY_BOUNDS, answers, strict=True)),
                            )
                        )
                    readings += [
                        SystemMinute(at, process, "checkouts", "paid", rng.randrange(20, 40)),
                        SystemMinute(at, process, "checkouts", "out_of_stock", rng.randrange(3)),
                        SystemMinute(at, process, "outbox_lag_seconds", "", rng.random()),
                        SystemMinute(at, process, "pool_in_use", "", rng.randrange(1, 10)),
                        SystemMinute(at, process, "pool_size", "", 10),
                    ]
                Warehouse(root).write_minutes(process, minutes, readings)
                written += sum(1 + len(m.buckets) for m in minutes) + len(readings)
                progress.advance(task)
    return written


def answers(root: Path, facts: int) -> list[Answer]:
    warehouse = Warehouse(root)
    middle = FIRST_DAY + timedelta(days=DAYS // 2)
    day, week, everything = (
        (middle, middle + timedelta(days=1)),
        (middle, middle + timedelta(days=7)),
        (FIRST_DAY, FIRST_DAY + timedelta(days=DAYS)),
    )
    fortnight = (middle - timedelta(days=7), middle + timedelta(days=7))
    four_weeks = (middle - timedelta(days=28), middle)
    hour, one_day, an_hour = 3600, 86_400, timedelta(hours=1)
    questions: list[tuple[str, Callable[[], list[Any]]]] = [
        ("sales, a day", lambda: warehouse.sales([], *day, None)),
        ("sales, a day, one market", lambda: warehouse.sales([], *day, "DE")),
        ("sales, a week", lambda: warehouse.sales([], *week, None)),
        (f"sales, {DAYS} days", lambda: warehouse.sales([], *everything, None)),
        ("revenue by hour, a week", lambda: warehouse.revenue([], *week, None, hour)),
        (f"revenue by day, {DAYS} days", lambda: warehouse.revenue([], *everything, None, one_day)),
        ("top 10 products, a week", lambda: warehouse.products([], *week, None, 10)),
        (f"top 10 products, {DAYS} days", lambda: warehouse.products([], *everything, None, 10)),
        (
            "lines by week (growth), two weeks",
            lambda: warehouse.lines([], *fortnight, None, week[0]),
        ),
        ("funnel and declines, a week", lambda: warehouse.outcomes([], *week, None)),
        (f"funnel and declines, {DAYS} days", lambda: warehouse.outcomes([], *everything, None)),
        (
            "orders by hour and market, 28 days (the forecast's history)",
            lambda: warehouse.hourly([], *four_weeks, None),
        ),
        ("customers new and returning, a week", lambda: warehouse.customers([], *week, None)),
        ("stock-outs, a week", lambda: warehouse.stock_outs([], *week, None, an_hour)),
        (f"stock-outs, {DAYS} days", lambda: warehouse.stock_outs([], *everything, None, an_hour)),
        (
            "timeline by minute, a day (orders, the checkout, the machinery)",
            lambda: _rows(warehouse.timeline([], *day, 60, None, CHECKOUT_ROUTE, [], [])),
        ),
        (
            "timeline by hour, a week",
            lambda: _rows(warehouse.timeline([], *week, hour, None, CHECKOUT_ROUTE, [], [])),
        ),
    ]
    found = []
    for question, ask in questions:
        times = []
        for _ in range(3):
            began = time.perf_counter()
            rows = ask()
            times.append(time.perf_counter() - began)
        found.append(Answer(question, facts, min(times), len(rows)))
    return found


def _rows(sides: tuple[list[Any], ...]) -> list[Any]:
    return [row for side in sides for row in side]


def _envelopes(count: int) -> list[Envelope]:
    now = datetime.now(UTC)
    envelopes = []
    for _ in range(count // 2):
        order = str(uuid.uuid4())
        total = {"amount": 2599, "currency": "USD"}
        placed = OrderPlaced(
            order_id=order,
            number="C-BENCH",
            checkout_id=order,
            payment_id=None,
            customer_id=None,
            market="US",
            total=total,
            lines=[{"sku": "MUG", "quantity": 2, "line_total": total}],
            placed_at=now.isoformat(),
        )
        paid = OrderPaid(
            order_id=order, number="C-BENCH", checkout_id=order, payment_id=None, amount=total
        )
        for event in (placed, paid):
            envelopes.append(Envelope(event.event_type, asdict(event), now))
    return envelopes


async def ingestion(database: str, facts: int, workdir: Path, batch: int) -> Ingestion:
    name = None
    if database == "postgresql":
        name = f"colonnade_bench_{uuid.uuid4().hex[:10]}"
        await admin_execute(f'CREATE DATABASE "{name}"')
        url = dsn_of(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    else:
        url = f"sqlite+aiosqlite:///{workdir / f'ingest-{batch}.db'}"
    db = Database(url)
    try:
        await migrations.upgrade(db, ["analytics"])
        analytics = AnalyticsService(db, workdir / f"warehouse-{database}-{batch}")
        # As the shop takes them: each batch with its inbox marks, in one transaction.
        take = inbox.guard_batch(db, "analytics.facts", analytics.record)
        envelopes = _envelopes(facts)
        began = time.perf_counter()
        for start in range(0, len(envelopes), batch):
            await take(envelopes[start : start + batch])
        recorded = time.perf_counter() - began
        began = time.perf_counter()
        sealed = 0
        while written := await analytics.seal():
            sealed += written
        seal_seconds = time.perf_counter() - began
        return Ingestion(database, batch, sealed, sealed / recorded, sealed / seal_seconds)
    finally:
        await db.dispose()
        if name is not None:
            await admin_execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def table(found: list[Answer], taken: list[Ingestion]) -> Table:
    shown = Table(title="The analytics warehouse")
    for column in ("figure", "facts", "value", "target", "met"):
        shown.add_column(column, justify="left" if column == "figure" else "right")
    for answer in found:
        shown.add_row(
            f"{answer.question} ({answer.rows:,} rows)",
            f"{answer.facts:,}",
            f"{answer.best_seconds:.2f} s",
            f"< {TARGET_ANSWER_SECONDS:.0f} s",
            "yes" if answer.best_seconds < TARGET_ANSWER_SECONDS else "NO",
        )
    for taking in taken:
        for label, rate in (
            (
                f"facts taken by the consumer, {taking.batch} events a batch",
                taking.record_per_second,
            ),
            ("facts sealed into Parquet", taking.seal_per_second),
        ):
            shown.add_row(
                f"{label} ({taking.database})",
                f"{taking.facts:,}",
                f"{rate:,.0f}/s",
                f"≥ {TARGET_FACTS_PER_SECOND:,}/s",
                "yes" if rate >= TARGET_FACTS_PER_SECOND else "NO",
            )
    return shown


async def main(options: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="colonnade-insights-"))
    try:
        facts = write_facts(workdir / "warehouse", options.facts)
        # The system's side of the week the questions look at.
        write_system(workdir / "warehouse", FIRST_DAY + timedelta(days=DAYS // 2), 7)
        found = answers(workdir / "warehouse", facts)
        taken = [
            await ingestion(d, options.ingest, workdir, batch)
            for d in options.databases
            for batch in CONSUMER_BATCHES
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(table(found, taken))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"insights-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "arguments": vars(options),
                "answers": [asdict(a) for a in found],
                "ingestion": [asdict(t) for t in taken],
            },
            indent=2,
        )
    )
    console.print(f"written to {path}")


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=10_000_000, help="facts in the warehouse")
    parser.add_argument("--ingest", type=int, default=200_000, help="facts taken per database")
    parser.add_argument(
        "--databases", type=lambda text: text.split(","), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--quick", action="store_true", help="1,000,000 facts, 20,000 taken")
    options = parser.parse_args()
    if options.quick:
        options.facts, options.ingest = 1_000_000, 20_000
    return options


if __name__ == "__main__":
    asyncio.run(main(parse_options()))
