"""The purchase benchmark: `python -m bench.purchase [--quick] [--seconds N] ...`.

On each database it starts a real `colonnade serve` on a fresh database, stocks it through
the admin API and measures (1) full guest purchases per second at several client counts and
(2) a hot-SKU flash sale until it sells out; then (3) runs pgbench on the same PostgreSQL
server and (4) prints the shop's figures as ratios of pgbench's, measured in the same run,
because on a small shared machine only ratios taken side by side mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from bench import load
from bench.load import SOLD_OUT, LoadPlan, LoadReport
from bench.pgbench import PgbenchFigures, pgbench_available
from bench.pgbench import measure as measure_pgbench
from bench.report import print_report, write_json
from bench.shop import (
    BenchShop,
    DatabaseKind,
    admin_fetchrow,
    audit_flash_sale,
    stock_flash_sale,
    stock_the_shop,
)

PRODUCTS = 50
# Far more than any run can sell: the throughput steps must measure buying, never sold out.
ON_HAND_PER_SKU = 10_000_000
FLASH_BUYERS = 256


@dataclass
class Step:
    """One measured load step and what PostgreSQL had to do for it."""

    database: DatabaseKind
    report: LoadReport
    write_transactions_per_purchase: float | None = None
    wal_kib_per_purchase: float | None = None


@dataclass
class FlashSaleAudit:
    stock: int
    sold_by_audit: int
    reserved_after: int
    sales_answered: int
    sold_out_answers: int
    other_answers: dict[str, int]

    @property
    def exact(self) -> bool:
        """Exactly the stock sold, nothing held, and every other answer a clean "sold out"."""
        return (
            self.sold_by_audit == self.stock == self.sales_answered
            and self.reserved_after == 0
            and not self.other_answers
        )


@dataclass
class Results:
    arguments: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    audits: dict[str, FlashSaleAudit] = field(default_factory=dict)
    transactions_per_purchase: dict[str, float] = field(default_factory=dict)
    pgbench: PgbenchFigures | None = None


async def _postgres_position() -> tuple[int, str]:
    """The next transaction id and the WAL position: both move only with writes, at once."""
    row = await admin_fetchrow(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid,"
        " pg_current_wal_lsn()::text AS lsn"
    )
    return int(row["xid"]), str(row["lsn"])


async def _wal_bytes(start: str, end: str) -> int:
    row = await admin_fetchrow(
        "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint AS bytes", end, start
    )
    return int(row["bytes"])


async def _measure(
    pool: ProcessPoolExecutor, shop: BenchShop, plan: LoadPlan, kind: DatabaseKind
) -> Step:
    loop = asyncio.get_running_loop()
    before = await _postgres_position() if kind == "postgresql" else None
    report = await loop.run_in_executor(pool, load.run, plan)
    step = Step(kind, report)
    if before is not None and report.attempts_total:
        after = await _postgres_position()
        # Server-wide counters, but nothing else writes meanwhile; the outbox relay's and
        # the upkeep jobs' writes are part of what a purchase costs, so they stay in.
        step.write_transactions_per_purchase = (after[0] - before[0]) / report.attempts_total
        step.wal_kib_per_purchase = (
            await _wal_bytes(before[1], after[1]) / 1024 / report.attempts_total
        )
    return step


def _flash_stock(results: Results, kind: DatabaseKind, seconds: int) -> int:
    """Enough units for the sale to last about `seconds` at the best rate this shop reached,
    so a slow shop's sale ends in reasonable time and a fast one's is long enough to measure;
    at most 150 units per second of the run (3,000 for the default 20 s)."""
    best = max((s.report.rate for s in results.steps if s.database == kind), default=0.0)
    return max(100, min(150 * seconds, round(best * seconds)))


async def _bench_database(
    kind: DatabaseKind, pool: ProcessPoolExecutor, options: argparse.Namespace, results: Results
) -> None:
    # SQLite's writers queue inside one process; PostgreSQL takes the workers asked for.
    shop = BenchShop(kind, workers=options.workers if kind == "postgresql" else 1)
    try:
        await shop.open()
        shelves = await stock_the_shop(
            shop.base_url, PRODUCTS, ON_HAND_PER_SKU, promotion=options.promotion is not None
        )
        at_checkout = options.promotion == "checkout"
        attempts = 0
        for clients in options.clients:
            print(f"  {kind}: {clients} clients buying for {options.seconds}s ...", flush=True)
            plan = replace(
                shop.buying(
                    shelves.skus, clients, warmup_seconds=options.warmup, seconds=options.seconds
                ),
                promotion_code=shelves.promotion_code,
                code_at_checkout=at_checkout,
            )
            step = await _measure(pool, shop, plan, kind)
            results.steps.append(step)
            attempts += step.report.attempts_total
            # Let the outbox relay catch up, so one step's backlog does not slow the next.
            await asyncio.sleep(1)
        flash_stock = options.flash_stock or _flash_stock(results, kind, options.seconds)
        await stock_flash_sale(shop.base_url, shelves.flash_sku, flash_stock)
        print(f"  {kind}: flash sale of {flash_stock} units ...", flush=True)
        flash = LoadPlan(
            base_url=shop.base_url,
            metrics_url=shop.metrics_url,
            server_pid=shop.pid,
            watch_database=kind == "postgresql",
            skus=[shelves.flash_sku],
            clients=FLASH_BUYERS,
            scenario="flash_sale",
            deadline_seconds=max(120.0, options.seconds * 20),
            promotion_code=shelves.promotion_code,
            code_at_checkout=at_checkout,
        )
        step = await _measure(pool, shop, flash, kind)
        results.steps.append(step)
        attempts += step.report.attempts_total
        await asyncio.sleep(1)  # reservations settle; the audit must see the final state
        stock = await audit_flash_sale(shop.base_url, shelves.flash_sku)
        results.audits[kind] = FlashSaleAudit(
            stock=flash_stock,
            sold_by_audit=int(stock["sold"]),
            reserved_after=int(stock["reserved"]),
            sales_answered=step.report.purchases_total,
            sold_out_answers=step.report.sold_out_answers,
            other_answers={k: v for k, v in step.report.errors.items() if k != SOLD_OUT},
        )
        if kind == "postgresql" and shop.database is not None:
            shop.stop_server()
            # Backends flush their statistics when they end; give them a moment.
            await asyncio.sleep(1)
            row = await admin_fetchrow(
                "SELECT xact_commit + xact_rollback AS transactions FROM pg_stat_database"
                " WHERE datname = $1",
                shop.database,
            )
            # Whole run, seeding and upkeep included: a slight overestimate per purchase.
            results.transactions_per_purchase[kind] = int(row["transactions"]) / max(attempts, 1)
    except Exception:
        print(f"--- last lines of the {kind} shop's log ---\n{shop.log()}", file=sys.stderr)
        raise
    finally:
        await shop.close()


async def run(options: argparse.Namespace) -> Results:
    results = Results(arguments={k: v for k, v in vars(options).items()})
    # spawn, not fork: the load generator must start clean, with no copy of this process.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for kind in options.databases:
            await _bench_database(kind, pool, options, results)
    if "postgresql" in options.databases:
        if pgbench_available():
            print(f"  pgbench: TPC-B-like and hot-row purchase, {options.seconds}s each ...")
            results.pgbench = await measure_pgbench(options.seconds, scale=options.scale)
        else:
            print("  pgbench is not installed: no ratios", file=sys.stderr)
    return results


def _list(kind: type[Any]) -> Any:
    def parse(text: str) -> list[Any]:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]

    return parse


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.purchase", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=None, help="per load step (default 20)")
    parser.add_argument("--databases", type=_list(str), default=["sqlite", "postgresql"])
    parser.add_argument("--clients", type=_list(int), default=[16, 64, 256])
    parser.add_argument(
        "--flash-stock",
        type=int,
        default=None,
        help="units in the flash sale (default: about --seconds of sales at the measured rate)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="server worker processes on PostgreSQL (default 2, one per core; SQLite uses 1)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (3s steps)")
    parser.add_argument(
        "--promotion",
        nargs="?",
        const="cart",
        choices=["cart", "checkout"],
        help="Black Friday: every SKU on sale, and a code on every order, entered on the cart "
        "before checkout (cart, the default) or given in the checkout's body (checkout)",
    )
    options = parser.parse_args(argv)
    unknown = set(options.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if options.seconds is None:
        options.seconds = 3 if options.quick else 20
    # A warm-up before each window: connection pools fill, caches and the JIT-less
    # interpreter's first-call costs are paid outside the measurement.
    options.warmup = min(5.0, max(1.0, options.seconds / 4))
    # -s 10 takes a while to load; a smoke run only checks that everything works.
    options.scale = 1 if options.quick else 10
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    print(
        f"Colonnade purchase benchmark on {os.cpu_count()} cores: server, database and load"
        " generator share them, so read the CPU columns next to every rate.",
        flush=True,
    )
    results = asyncio.run(run(options))
    print_report(results)
    print(f"results written to {write_json(results)}")


if __name__ == "__main__":
    main()
