"""The waiting room at four times checkout capacity: `python -m bench.waiting_room
[--shapes one,workers,split] [--seconds N] [--times 4] [--limit auto|N]`.

For each shape, on PostgreSQL:

1. Capacity: a shop without a waiting room, bought from by 32 closed-loop shoppers; its
   purchases per second are the checkout capacity C.
2. The sale: a shop of the same shape with the waiting room (COLONNADE_CHECKOUT_CONCURRENCY,
   `auto` by default). Buyers fill their carts before it starts; then checkouts arrive at
   `times` * C a second for `seconds` (open loop: a new buyer every 1/(times * C) s, however
   slow the shop answers), for a flash SKU stocked for a quarter of them. Each buyer follows
   the queue as a client should: it comes back with its ticket when Retry-After says.

What it measures, against what the issue promises:
- the latency of the checkouts let in (the request that got in) against the objective's 1 s,
  and of the queue's own answers;
- that every buyer ends with an order or "sold out" (nothing else);
- admission order (by the shop's record of when each checkout began) against ticket order:
  how far (in places) a holder was let in out of its number's turn, the rank correlation of
  the two orders, and how many holders bought with a number past the units the stock left
  for the queue;
- nothing oversold (the SKU's stock audit) and nobody charged twice (captured payments
  against orders, in the database).

Shapes: `one` (one process), `workers` (two workers sharing the queue through Redis), `split`
(NATS JetStream, inventory in a process and a database of its own, the queue in Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import asyncpg
import jwt
from rich.progress import Progress
from rich.table import Table
from tests.e2e.buyers import checkout_body

from bench import load
from bench.measure import percentile
from bench.report import console
from bench.shapes import shaped_shop
from bench.shop import (
    BenchShop,
    audit_flash_sale,
    dsn_of,
    stock_flash_sale,
    stock_the_shop,
)

REDIS_URL = os.environ.get("COLONNADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
OBJECTIVE_SECONDS = 1.0


@dataclass
class Buyer:
    cart_id: str
    number: int | None = None
    # When the request that was let in was sent, and how long its answer took.
    let_in_at: float = 0.0
    # When the shop began its checkout, by the shop's own record: the admission order, free
    # of the load generator's own delays in sending.
    began_at: float = 0.0
    checkout_seconds: float = 0.0
    queue_answers: int = 0
    reconnects: int = 0
    outcome: str = ""


@dataclass
class Sale:
    shape: str
    capacity: float
    arrivals_per_second: float
    buyers: list[Buyer]
    queue_seconds: list[float]
    stock: int
    audit: dict[str, object]
    captured: int
    orders: int
    wall_seconds: float


@asynccontextmanager
async def a_shop(
    shape: str, settings: dict[str, str]
) -> AsyncIterator[tuple[BenchShop, str | None]]:
    """A shop of `shape` with `settings`, and its stockroom's URL in the split shape; the
    queue is shared through Redis by the processes of the workers and split shapes."""
    if shape in ("workers", "split"):
        settings = settings | {
            "COLONNADE_REDIS_URL": REDIS_URL,
            "COLONNADE_REDIS_KEY_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
        }
    async with shaped_shop(
        bus=False,
        split=shape == "split",
        workers=2 if shape == "workers" else 1,
        settings=settings,
    ) as shaped:
        yield shaped.shop, shaped.stockroom_url


async def capacity(shape: str, pool: ProcessPoolExecutor, seconds: float) -> float:
    async with a_shop(shape, {}) as (shop, stockroom_url):
        shelves = await stock_the_shop(shop.base_url, 20, 10_000_000, stockroom_url=stockroom_url)
        plan = shop.buying(shelves.skus, 32, warmup_seconds=3, seconds=seconds)
        report = await asyncio.get_running_loop().run_in_executor(pool, load.run, plan)
        return report.rate


async def _fill_cart(session: aiohttp.ClientSession, base_url: str, sku: str) -> Buyer:
    async with session.post(f"{base_url}/store/carts", json={"market": "US"}) as made:
        cart_id = (await made.json())["id"]
    async with session.post(
        f"{base_url}/store/carts/{cart_id}/lines", json={"sku": sku, "quantity": 1}
    ) as added:
        assert added.status == 200, await added.text()
    return Buyer(cart_id)


async def _check_out(
    session: aiohttp.ClientSession, base_url: str, buyer: Buyer, queue_seconds: list[float]
) -> None:
    key, ticket = uuid.uuid4().hex, None
    while True:
        headers = {"Idempotency-Key": key} | ({} if ticket is None else {"Queue-Ticket": ticket})
        sent = time.monotonic()
        try:
            async with session.post(
                f"{base_url}/store/carts/{buyer.cart_id}/checkout",
                json=checkout_body("tok_visa"),
                headers=headers,
            ) as answer:
                body = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
            # A kept-alive connection the shop closed as this request went out: the same
            # request again, as the Idempotency-Key allows.
            buyer.reconnects += 1
            if buyer.reconnects > 3:
                buyer.outcome = f"0 {type(error).__name__}"
                return
            continue
        except (aiohttp.ClientError, TimeoutError) as error:
            buyer.outcome = f"0 {type(error).__name__}"
            return
        took = time.monotonic() - sent
        if status == 409 and body.get("code") == "queue_ticket_used":
            # The answer lost above was its checkout's: asked again without the ticket, the
            # shop answers what it answered then.
            ticket = None
            continue
        if status == 503 and body.get("code") == "checkout_queued":
            queue_seconds.append(took)
            buyer.queue_answers += 1
            ticket = body["ticket"]
            if buyer.number is None:
                buyer.number = int(jwt.decode(ticket, options={"verify_signature": False})["n"])
            await asyncio.sleep(body["retry_after"])
            continue
        buyer.let_in_at, buyer.checkout_seconds = sent, took
        buyer.outcome = "ok" if status == 201 else f"{status} {body.get('code', '?')}"
        return


async def sale(shape: str, capacity_rate: float, options: argparse.Namespace) -> Sale:
    arrivals = options.times * capacity_rate
    count = max(int(arrivals * options.seconds), 10)
    stock = max(count // 4, 1)
    limit = {"COLONNADE_CHECKOUT_CONCURRENCY": options.limit}
    async with a_shop(shape, limit) as (shop, stockroom_url):
        shelves = await stock_the_shop(shop.base_url, 1, 10, stockroom_url=stockroom_url)
        connector = aiohttp.TCPConnector(limit=512)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            with Progress(console=console, transient=True) as progress:
                filling = progress.add_task(f"{shape}: filling {count} carts", total=count)
                buyers: list[Buyer] = []
                for start in range(0, count, 64):
                    batch = range(start, min(start + 64, count))
                    buyers += await asyncio.gather(
                        *(_fill_cart(session, shop.base_url, shelves.flash_sku) for _ in batch)
                    )
                    progress.update(filling, advance=len(batch))
                await stock_flash_sale(
                    shop.base_url, shelves.flash_sku, stock, stockroom_url=stockroom_url
                )
                selling = progress.add_task(
                    f"{shape}: {arrivals:.0f} checkouts/s arriving", total=count
                )
                queue_seconds: list[float] = []
                began = time.monotonic()
                running = []
                for n, buyer in enumerate(buyers):
                    await asyncio.sleep(max(0.0, began + n / arrivals - time.monotonic()))
                    task = asyncio.create_task(
                        _check_out(session, shop.base_url, buyer, queue_seconds)
                    )
                    task.add_done_callback(lambda _: progress.update(selling, advance=1))
                    running.append(task)
                await asyncio.gather(*running)
                wall = time.monotonic() - began
        audit = await audit_flash_sale(
            shop.base_url, shelves.flash_sku, stockroom_url=stockroom_url
        )
        assert shop.database is not None
        connection = await asyncpg.connect(dsn_of(shop.database))
        try:
            captured = await connection.fetchval(
                "SELECT count(*) FROM payments_payments WHERE status = 'captured'"
            )
            orders = await connection.fetchval("SELECT count(*) FROM orders_orders")
            began = {
                row["cart_id"]: row["created_at"].timestamp()
                for row in await connection.fetch(
                    "SELECT cart_id, created_at FROM checkout_checkouts"
                )
            }
        finally:
            await connection.close()
        for buyer in buyers:
            buyer.began_at = began.get(buyer.cart_id, 0.0)
    return Sale(
        shape, capacity_rate, arrivals, buyers, queue_seconds, stock, audit, captured, orders, wall
    )


def rank_correlation(numbers: list[int]) -> float:
    """Spearman's rank correlation of admission order (the list's) and ticket order: 1 when
    every holder went in by its number, about 0 for an order unrelated to the numbers."""
    n = len(numbers)
    if n < 2:
        return 1.0
    by_number = sorted(range(n), key=lambda i: numbers[i])
    rank = {i: r for r, i in enumerate(by_number)}
    squares = sum((rank[i] - i) ** 2 for i in range(n))
    return 1 - 6 * squares / (n * (n * n - 1))


def out_of_turn(numbers: list[int]) -> list[int]:
    """How many places each holder went in away from its number's turn, fewest first."""
    turn = {number: place for place, number in enumerate(sorted(numbers))}
    return sorted(abs(turn[number] - place) for place, number in enumerate(numbers))


def _order(buyers: list[Buyer]) -> tuple[list[int], float]:
    """How far admission order strayed from ticket order."""
    held = sorted(
        (b for b in buyers if b.number is not None), key=lambda b: (b.began_at, b.let_in_at)
    )
    numbers = [b.number for b in held if b.number is not None]
    return out_of_turn(numbers), rank_correlation(numbers)


def _paid_out_of_turn(sale: Sale) -> int:
    """Holders who bought with a number past the units left for the queue: each took a unit
    that, in strict ticket order, a holder before it would have had."""
    straight_in = sum(1 for b in sale.buyers if b.number is None and b.outcome == "ok")
    last_in_stock = sale.stock - straight_in
    return sum(
        1
        for b in sale.buyers
        if b.outcome == "ok" and b.number is not None and b.number > last_in_stock
    )


def _print(sales: list[Sale]) -> None:
    table = Table(title="Checkouts at a multiple of capacity through the waiting room (PostgreSQL)")
    for column in (
        "shape",
        "capacity/s",
        "arrivals/s",
        "buyers",
        "queued",
        "let-in p50 ms",
        "let-in p99 ms",
        "queue answer p99 ms",
        "outcomes",
        "places out of turn p50 / p99 / most",
        "rank corr.",
        "paid past the stock's numbers",
        "sold / stock",
        "captured / orders",
        "wall s",
    ):
        table.add_column(column, justify="right")
    for s in sales:
        times = sorted(
            b.checkout_seconds for b in s.buyers if b.outcome in ("ok", "409 out_of_stock")
        )
        paid = sorted(b.checkout_seconds for b in s.buyers if b.outcome == "ok")
        moved, correlation = _order(s.buyers)
        p50, p99 = (
            percentile([float(m) for m in moved], 0.5),
            percentile([float(m) for m in moved], 0.99),
        )
        outcomes = Counter(b.outcome for b in s.buyers)
        table.add_row(
            s.shape,
            f"{s.capacity:,.1f}",
            f"{s.arrivals_per_second:,.1f}",
            f"{len(s.buyers)}",
            f"{sum(1 for b in s.buyers if b.number is not None)}",
            f"{(percentile(paid, 0.5) or 0) * 1000:,.0f}",
            f"{(percentile(times, 0.99) or 0) * 1000:,.0f}",
            f"{(percentile(sorted(s.queue_seconds), 0.99) or 0) * 1000:,.0f}",
            ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()),
            f"{p50 or 0:.0f} / {p99 or 0:.0f} / {moved[-1] if moved else 0}",
            f"{correlation:.3f}",
            f"{_paid_out_of_turn(s)}",
            f"{s.audit.get('sold')} / {s.stock}",
            f"{s.captured} / {s.orders}",
            f"{s.wall_seconds:.1f}",
        )
    console.print(table)
    for s in sales:
        times = sorted(
            b.checkout_seconds for b in s.buyers if b.outcome in ("ok", "409 out_of_stock")
        )
        p99 = percentile(times, 0.99) or 0
        ended = all(b.outcome in ("ok", "409 out_of_stock") for b in s.buyers)
        endings = "ended with an order or sold out" if ended else "did NOT end well"
        exact = s.audit.get("sold") == s.stock == s.captured == s.orders
        console.print(
            f"{s.shape}: let-in p99 {'within' if p99 <= OBJECTIVE_SECONDS else 'OVER'} the"
            f" objective; every buyer {endings};"
            f" stock {'sold exactly, each buyer charged once' if exact else 'NOT exact'}"
        )


async def run(options: argparse.Namespace) -> list[Sale]:
    sales = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for shape in options.shapes.split(","):
            console.print(f"{shape}: measuring checkout capacity ...")
            rate = await capacity(shape, pool, options.capacity_seconds)
            console.print(f"{shape}: {rate:,.1f} purchases/s; the sale ...")
            sales.append(await sale(shape, rate, options))
    return sales


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="one,workers,split")
    parser.add_argument("--seconds", type=float, default=15.0, help="of arrivals")
    parser.add_argument("--times", type=float, default=4.0, help="arrivals, times capacity")
    parser.add_argument("--limit", default="auto", help="COLONNADE_CHECKOUT_CONCURRENCY")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    _print(asyncio.run(run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
