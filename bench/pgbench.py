"""The PostgreSQL yardsticks, measured on the same server in the same run as the shop.

Two pgbench runs give the ceilings the shop's figures are divided by: the TPC-B-like mix
(what this server does with small write transactions at all), and a minimal hot-row
purchase (one conditional stock decrement, an order row and an outbox row in one
transaction: the least any correct flash sale must do per sale).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.measure import CpuShares, CpuSnapshot
from bench.shop import admin_execute, dsn_of

HOT_ROW_TABLES = """
CREATE TABLE hot (id integer PRIMARY KEY, stock bigint NOT NULL CHECK (stock >= 0));
CREATE TABLE hot_orders (
    id bigserial PRIMARY KEY, sku text NOT NULL, quantity integer NOT NULL,
    placed_at timestamptz NOT NULL
);
CREATE TABLE hot_outbox (
    id bigserial PRIMARY KEY, event_type text NOT NULL, payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL, published_at timestamptz
);
-- Effectively infinite stock: the run measures the row's contention, never a sell-out.
INSERT INTO hot VALUES (1, 1000000000000);
"""

HOT_ROW_PURCHASE = """\
BEGIN;
UPDATE hot SET stock = stock - 1 WHERE id = 1 AND stock > 0;
INSERT INTO hot_orders (sku, quantity, placed_at) VALUES ('FLASH-SALE', 1, now());
INSERT INTO hot_outbox (event_type, payload, occurred_at)
    VALUES ('OrderPlaced', '{"sku": "FLASH-SALE", "quantity": 1}', now());
END;
"""


@dataclass
class PgbenchResult:
    name: str
    clients: int
    seconds: int
    tps: float
    latency_ms: float | None
    cpu: CpuShares


@dataclass
class PgbenchFigures:
    tpcb: PgbenchResult
    hot_row: PgbenchResult
    scale: int


def pgbench_available() -> bool:
    return shutil.which("pgbench") is not None


def _connection_args(database: str) -> list[str]:
    # pgbench takes libpq's URI form as the database name.
    return [dsn_of(database)]


def _pgbench(name: str, clients: int, seconds: int, args: list[str]) -> PgbenchResult:
    # No shop runs now: only PostgreSQL's share and the machine's are of interest.
    first = CpuSnapshot.take(server_pid=0, watch_database=True)
    done = subprocess.run(
        ["pgbench", *args], capture_output=True, text=True, timeout=seconds + 300, check=False
    )
    last = CpuSnapshot.take(server_pid=0, watch_database=True)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {name} failed:\n{done.stdout}\n{done.stderr}")
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
    if tps is None:
        raise RuntimeError(f"pgbench {name}: no tps in its output:\n{done.stdout}")
    return PgbenchResult(
        name=name,
        clients=clients,
        seconds=seconds,
        tps=float(tps.group(1)),
        latency_ms=float(latency.group(1)) if latency else None,
        cpu=CpuShares.between(first, last),
    )


def _initialize(scale: int, target: list[str]) -> None:
    done = subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(scale), *target],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench -i failed:\n{done.stderr}")


async def measure(seconds: int, *, scale: int = 10, tpcb_clients: int = 32) -> PgbenchFigures:
    """TPC-B-like tps and hot-row purchase tps on a database of their own, dropped after."""
    database = f"colonnade_bench_pgbench_{uuid.uuid4().hex[:10]}"
    await admin_execute(f'CREATE DATABASE "{database}"')
    try:
        target = _connection_args(database)
        await asyncio.to_thread(_initialize, scale, target)
        # pgbench blocks for the whole run; a thread keeps the event loop free meanwhile.
        tpcb = await asyncio.to_thread(
            _pgbench,
            "TPC-B-like",
            tpcb_clients,
            seconds,
            ["-c", str(tpcb_clients), "-j", "2", "-T", str(seconds), *target],
        )
        conn = await asyncpg.connect(dsn_of(database))
        try:
            await conn.execute(HOT_ROW_TABLES)
        finally:
            await conn.close()
        with tempfile.TemporaryDirectory(prefix="colonnade-pgbench-") as scratch:
            script = Path(scratch) / "hot_row_purchase.sql"
            script.write_text(HOT_ROW_PURCHASE)
            hot_row = await asyncio.to_thread(
                _pgbench,
                "hot-row purchase",
                64,
                seconds,
                ["-n", "-f", str(script), "-c", "64", "-j", "2", "-T", str(seconds), *target],
            )
    finally:
        await admin_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return PgbenchFigures(tpcb=tpcb, hot_row=hot_row, scale=scale)
