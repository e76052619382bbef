"""The shapes benchmark: `python -m bench.shapes [--seconds N] [--clients N] [--rounds N]`.

Buys on PostgreSQL through one `colonnade serve` process with its events carried two ways,
in the same run, alternating so the machine's noise falls on both alike:

- embedded: the in-process bus (the relay hands each event to its consumers directly);
- jetstream: the same process with COLONNADE_BUS_URL on the NATS server at
  COLONNADE_BENCH_NATS_URL (default nats://127.0.0.1:4222): the relay publishes to streams,
  durable pull consumers take the events back;
- split (with --split): jetstream, and inventory in a process and a database of its own
  (COLONNADE_INVENTORY_DATABASE_URL): the shop calls it over NATS; card checkouts keep their
  batches, with two remote calls a batch (hold, then settle).

For each: purchases/s and p99 at the given clients, the server's CPU per purchase (the
inventory process's beside it for split) and NATS's, the outbox lag, and how long after the
load the last paid order's confirmation e-mail took to be sent (the consumers catching up).
The ratios of the rates are the cost of the broker and of the split.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import nats
from rich.table import Table

from bench import load
from bench.load import LoadReport
from bench.report import console
from bench.shop import BenchShop, admin_execute, dsn_of, free_port, stock_the_shop

NATS_URL = os.environ.get("COLONNADE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
PRODUCTS = 50
ON_HAND_PER_SKU = 10_000_000


@dataclass
class Measured:
    shape: str
    report: LoadReport
    nats_cpu_ms_per_purchase: float | None
    confirmed_after_seconds: float
    # The inventory process's CPU per purchase, in the split shape.
    inventory_cpu_ms_per_purchase: float | None = None


def _nats_cpu_seconds() -> float | None:
    """CPU the local nats-server has used so far (its own process, read from /proc)."""
    found = subprocess.run(
        ["pgrep", "-x", "nats-server"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not found:
        return None
    total = 0.0
    for pid in found:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _unconfirmed(database: str) -> int:
    """Paid orders whose confirmation e-mail is not sent yet."""
    conn = await asyncpg.connect(dsn_of(database))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM orders_orders o WHERE o.status = 'paid' AND NOT EXISTS"
                " (SELECT 1 FROM notifications_messages m WHERE m.order_id = o.id)"
            )
        )
    finally:
        await conn.close()


async def _until_confirmed(database: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not await _unconfirmed(database):
            return
        await asyncio.sleep(0.1)


async def _remove_streams(namespace: str) -> None:
    client = await nats.connect(NATS_URL)
    try:
        jetstream = client.jetstream()
        for info in await jetstream.streams_info():
            if info.config.name and info.config.name.startswith(namespace.upper() + "_"):
                await jetstream.delete_stream(info.config.name)
    finally:
        await client.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stockroom(shop: BenchShop) -> tuple[subprocess.Popen[bytes], str]:
    """Inventory in a process of its own, on its own database and the shop's NATS, answering
    the shop's calls and relaying its own events, once it is ready; and its URL."""
    env = {**shop.env, "COLONNADE_METRICS_PORT": str(free_port())}
    port = free_port()
    argv = [sys.executable, "-m", "colonnade", "serve", "--port", str(port)]
    with (shop.workdir / "stockroom.log").open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--modules", "inventory"],
            env=env,
            cwd=shop.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the inventory process exited early: see stockroom.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the inventory process did not become ready")


@dataclass
class ShapedShop:
    shop: BenchShop
    # The process serving inventory on its own database, and its URL, when split.
    stockroom: subprocess.Popen[bytes] | None = None
    stockroom_url: str | None = None


@asynccontextmanager
async def shaped_shop(
    *, bus: bool, split: bool, workers: int = 1, settings: dict[str, str] | None = None
) -> AsyncIterator[ShapedShop]:
    """A shop on PostgreSQL with `settings`; its events on NATS JetStream with `bus`, and
    with `split` inventory in a process and a database of its own. Everything it made
    (databases, streams) is removed afterwards."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = dict(settings or {})
    if bus or split:
        settings |= {"COLONNADE_BUS_URL": NATS_URL, "COLONNADE_BUS_NAMESPACE": namespace}
    stock_database = None
    if split:
        stock_database = f"colonnade_bench_stock_{uuid.uuid4().hex[:10]}"
        await admin_execute(f'CREATE DATABASE "{stock_database}"')
        settings["COLONNADE_INVENTORY_DATABASE_URL"] = dsn_of(stock_database).replace(
            "postgresql://", "postgresql+asyncpg://", 1
        )
    shaped = ShapedShop(BenchShop("postgresql", workers=workers, settings=settings))
    try:
        await shaped.shop.open()
        if split:
            shaped.stockroom, shaped.stockroom_url = await asyncio.to_thread(
                _stockroom, shaped.shop
            )
        yield shaped
    finally:
        if shaped.stockroom is not None:
            shaped.stockroom.terminate()
            shaped.stockroom.wait(timeout=30)
        await shaped.shop.close()
        if stock_database is not None:
            await admin_execute(f'DROP DATABASE IF EXISTS "{stock_database}" WITH (FORCE)')
        if bus or split:
            await _remove_streams(namespace)


async def _measure_shape(
    shape: str, pool: ProcessPoolExecutor, options: argparse.Namespace
) -> Measured:
    async with shaped_shop(bus=shape == "jetstream", split=shape == "split") as shaped:
        shop, stockroom = shaped.shop, shaped.stockroom
        shelves = await stock_the_shop(
            shop.base_url, PRODUCTS, ON_HAND_PER_SKU, stockroom_url=shaped.stockroom_url
        )
        plan = shop.buying(
            shelves.skus, options.clients, warmup_seconds=options.warmup, seconds=options.seconds
        )
        nats_before = _nats_cpu_seconds()
        stockroom_before = _cpu_seconds(stockroom.pid) if stockroom else 0.0
        report = await asyncio.get_running_loop().run_in_executor(pool, load.run, plan)
        nats_after = _nats_cpu_seconds()
        stockroom_ms = (
            (_cpu_seconds(stockroom.pid) - stockroom_before) * 1000 / max(report.purchases, 1)
            if stockroom
            else None
        )
        ended = time.monotonic()
        assert shop.database is not None
        await _until_confirmed(shop.database, ended + 120)
        nats_ms = None
        if shape != "embedded" and nats_before is not None and nats_after is not None:
            nats_ms = (nats_after - nats_before) * 1000 / max(report.attempts_total, 1)
        return Measured(shape, report, nats_ms, time.monotonic() - ended, stockroom_ms)


async def run(options: argparse.Namespace) -> list[Measured]:
    measured = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for round_ in range(options.rounds):
            for shape in ("embedded", "jetstream", *(("split",) if options.split else ())):
                console.print(f"round {round_ + 1}: {shape}, {options.clients} clients ...")
                measured.append(await _measure_shape(shape, pool, options))
    return measured


def _print(measured: list[Measured]) -> None:
    table = Table(title="Events in process and on NATS JetStream, inventory split off (PostgreSQL)")
    for column in (
        "shape",
        "purchases/s",
        "p99 ms",
        "server CPU ms/purchase",
        "inventory CPU ms/purchase",
        "NATS CPU ms/purchase",
        "outbox lag s",
        "confirmed after s",
    ):
        table.add_column(column, justify="right")
    for m in measured:
        per_purchase = m.report.cpu.server * m.report.window_seconds / max(m.report.purchases, 1)
        table.add_row(
            m.shape,
            f"{m.report.rate:,.1f}",
            f"{m.report.p99_ms or 0:,.0f}",
            f"{per_purchase * 1000:.2f}",
            "—"
            if m.inventory_cpu_ms_per_purchase is None
            else f"{m.inventory_cpu_ms_per_purchase:.2f}",
            "—" if m.nats_cpu_ms_per_purchase is None else f"{m.nats_cpu_ms_per_purchase:.2f}",
            "—" if m.report.outbox_lag_seconds is None else f"{m.report.outbox_lag_seconds:.2f}",
            f"{m.confirmed_after_seconds:.1f}",
        )
    console.print(table)
    rates = {
        shape: sum(m.report.rate for m in measured if m.shape == shape)
        for shape in ("embedded", "jetstream", "split")
    }
    ratio = rates["jetstream"] / max(rates["embedded"], 1e-9)
    console.print(f"jetstream ÷ embedded purchases/s, same run: [bold]{ratio:.3f}[/bold]")
    if rates["split"]:
        split = rates["split"] / max(rates["embedded"], 1e-9)
        console.print(f"split ÷ embedded purchases/s, same run: [bold]{split:.3f}[/bold]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per shape")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="embedded/jetstream pairs")
    parser.add_argument(
        "--split", action="store_true", help="a third shape: inventory in its own process"
    )
    _print(asyncio.run(run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
