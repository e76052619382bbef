"""Does a shop with a long past buy as fast as a new one? `python -m bench.stored [--orders N]`.

Two shops on PostgreSQL in one run: an empty one, and one whose tables already hold N past
purchases (orders with their lines, payments, checkouts, reservations and carts: every table a
purchase grows), written straight into the database with generate_series since buying a
million orders over HTTP would take hours. Each is then measured at 64 clients, and the
figure is the ratio of the two rates.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import asyncpg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench import load
from bench.load import LoadReport
from bench.shop import BenchShop, dsn_of, stock_the_shop

TARGET = 0.9

# Each statement writes one table's share of the past purchases, n of them at a time.
_PAST = [
    (
        "carts",
        """INSERT INTO cart_carts (id, market, currency, tax_inclusive, status, created_at,
               updated_at, version)
           SELECT 'past-cart-' || g, 'US', 'USD', false, 'checked_out', now(), now(), 2
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
    (
        "checkouts",
        """INSERT INTO checkout_checkouts (id, idempotency_key, fingerprint, cart_id, step,
               reservation_id, payment_id, order_id, response_status, created_at, updated_at)
           SELECT 'past-co-' || g, 'past-key-' || g, md5(g::text), 'past-cart-' || g,
               'completed', 'past-res-' || g, 'past-pay-' || g, 'past-order-' || g, 201,
               now(), now()
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
    (
        "reservations",
        """INSERT INTO inventory_reservations (id, reference, status, expires_at, created_at)
           SELECT 'past-res-' || g, 'past-co-' || g, 'committed', now(), now()
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
    (
        "payments",
        """INSERT INTO payments_payments (id, checkout_id, order_id, method, currency, amount,
               authorized_amount, captured_amount, refunded_amount, status, created_at,
               updated_at)
           SELECT 'past-pay-' || g, 'past-co-' || g, 'past-order-' || g, 'card', 'USD', 2035,
               2035, 2035, 0, 'captured', now(), now()
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
    (
        "orders",
        """INSERT INTO orders_orders (id, number, checkout_id, market, currency, subtotal, tax,
               shipping, total, tax_inclusive, paid_amount, refunded_amount, status,
               payment_id, access_token_hash, placed_at, updated_at, email_index)
           SELECT 'past-order-' || g, 'P-' || g, 'past-co-' || g, 'US', 'USD', 1850, 185, 0,
               2035, false, 2035, 0, 'paid', 'past-pay-' || g, md5(g::text),
               now() - (g || ' seconds')::interval, now(), md5('email' || (g % 50000))
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
    (
        "order lines",
        """INSERT INTO orders_lines (order_id, position, sku, title, quantity, unit_price,
               line_total, tax)
           SELECT 'past-order-' || g, 0, 'BENCH-' || lpad((g % 50)::text, 3, '0'),
               'Benchmark beans', 1, 1850, 1850, 185
           FROM generate_series($1::bigint, $2::bigint) g""",
    ),
]
_CHUNK = 50_000


async def _write_the_past(database: str, orders: int) -> float:
    """Write `orders` past purchases with a progress bar; returns the seconds it took."""
    began = time.monotonic()
    conn = await asyncpg.connect(dsn_of(database))
    try:
        with Progress() as progress:
            task = progress.add_task(f"writing {orders:,} past purchases", total=orders)
            for start in range(1, orders + 1, _CHUNK):
                end = min(orders, start + _CHUNK - 1)
                async with conn.transaction():
                    for _, statement in _PAST:
                        await conn.execute(statement, start, end)
                progress.update(task, completed=end)
        # Vacuumed now, so the autovacuum a bulk load sets off does not run in the measurement.
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    return time.monotonic() - began


async def _measure(shop: BenchShop, seconds: int) -> LoadReport:
    shelves = await stock_the_shop(shop.base_url, 50, 10_000_000)
    plan = shop.buying(
        shelves.skus, 64, warmup_seconds=min(5.0, max(1.0, seconds / 4)), seconds=seconds
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, load.run, plan)


async def _shop_rate(orders: int, seconds: int, workers: int) -> tuple[LoadReport, float]:
    shop = BenchShop("postgresql", workers=workers)
    try:
        await shop.open()
        wrote = 0.0
        if orders:
            assert shop.database is not None
            wrote = await _write_the_past(shop.database, orders)
        print(f"  {orders:,} past orders: 64 clients buying for {seconds}s ...", flush=True)
        return await _measure(shop, seconds), wrote
    finally:
        await shop.close()


async def run(orders: int, seconds: int, workers: int) -> None:
    empty, _ = await _shop_rate(0, seconds, workers)
    full, wrote = await _shop_rate(orders, seconds, workers)
    table = Table(title=f"Purchases at 64 clients, empty shop against {orders:,} past orders")
    for name in ("shop", "rate/s", "p50 ms", "p99 ms", "server CPU", "PG CPU"):
        table.add_column(name, justify="left" if name == "shop" else "right")
    for name, report in (("empty", empty), (f"{orders:,} orders", full)):
        table.add_row(
            name,
            f"{report.rate:.1f}",
            f"{report.p50_ms or 0:,.0f}",
            f"{report.p99_ms or 0:,.0f}",
            f"{report.cpu.server:.0%}",
            f"{report.cpu.database or 0:.0%}",
        )
    console = Console()
    console.print(table)
    ratio = full.rate / empty.rate if empty.rate else 0.0
    verdict = "met" if ratio >= TARGET else "NOT met"
    console.print(
        f"  ratio {ratio:.2f} (target ≥ {TARGET}: {verdict}); the past took {wrote:.0f}s to write"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stored", description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(run(options.orders, options.seconds, options.workers))


if __name__ == "__main__":
    main()
