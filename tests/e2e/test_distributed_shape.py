"""The shop with its events on NATS JetStream, as separate processes on one PostgreSQL
database: two `colonnade serve --no-relay --no-consumers` processes taking purchases, a
`colonnade relay` and a `colonnade worker` for the consumers. A flash sale split across both
web processes sells exactly the stock and every paid order is confirmed once, also when the
relay and the worker are killed and the broker restarted in the middle of it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from colonnade.kernel.outbox import LEASE
from tests.conftest import OwnNats, PostgresServer, free_port, sqlalchemy_url
from tests.e2e.buyers import Tally, flash_sale
from tests.e2e.conftest import RunningShop, start_shop, stop
from tests.e2e.staff import Staff


@dataclass
class Cluster:
    web: list[RunningShop]
    dsn: str
    nats: OwnNats
    env: dict[str, str]
    workdir: Path
    worker: subprocess.Popen[bytes] | None = None
    relay: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        self.worker = _background(self.env, self.workdir, "worker")

    def start_relay(self) -> None:
        self.relay = _background(self.env, self.workdir, "relay")

    def kill_worker_and_relay(self) -> None:
        for process in (self.worker, self.relay):
            assert process is not None
            process.kill()
            process.wait(timeout=10)


def _background(env: dict[str, str], workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{args[0]}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "colonnade", *args],
        env={**env, "COLONNADE_METRICS_PORT": str(free_port())},
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def cluster(
    postgres: PostgresServer, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    broker = OwnNats(workdir / "jetstream")
    broker.start()
    dsn = postgres.create_database("colonnade_cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
    env.update(
        COLONNADE_DATABASE_URL=sqlalchemy_url(dsn),
        COLONNADE_BUS_URL=broker.url,
        COLONNADE_SECRET_KEY="end-to-end-tests-only-" + "k" * 32,
        COLONNADE_OUTBOX_POLL_SECONDS="0.2",
    )
    # The web processes serve requests only: events leave through the relay process and
    # reach their consumers in the worker process, so killing those two is a real fault.
    first, first_url = start_shop(
        {**env, "COLONNADE_METRICS_PORT": str(free_port())},
        workdir,
        "--demo-data",
        "--no-relay",
        "--no-consumers",
    )
    second, second_url = start_shop(
        {**env, "COLONNADE_METRICS_PORT": str(free_port())}, workdir, "--no-relay", "--no-consumers"
    )
    running = Cluster(
        web=[RunningShop(first_url, env, workdir), RunningShop(second_url, env, workdir)],
        dsn=dsn,
        nats=broker,
        env=env,
        workdir=workdir,
    )
    running.start_worker()
    running.start_relay()
    try:
        yield running
    finally:
        for process in (first, second, running.relay, running.worker):
            if process is not None:
                stop(process)
        broker.stop()


@pytest.fixture(scope="module")
def staff(cluster: Cluster) -> Staff:
    return Staff.sign_in(cluster.web[0])


async def _split_sale(cluster: Cluster, sku: str, buyers: int) -> Tally:
    halves = await asyncio.gather(
        *(flash_sale(web.base_url, sku, buyers // len(cluster.web)) for web in cluster.web)
    )
    return Tally([purchase for half in halves for purchase in half.purchases])


async def _confirmations(dsn: str, order_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT order_id, count(*) FROM notifications_messages"
            " WHERE order_id = ANY($1::text[]) GROUP BY order_id",
            order_ids,
        )
        return {row[0]: int(row[1]) for row in rows}
    finally:
        await conn.close()


def _drained(dsn: str, seconds: float) -> tuple[int, int]:
    """Events not yet on the bus and dead letters, once none wait or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while True:
        left = asyncio.run(_left_over(dsn))
        if left[0] == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


async def _left_over(dsn: str) -> tuple[int, int]:
    """Events not yet on the bus, and dead letters."""
    conn = await asyncpg.connect(dsn)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM kernel_outbox WHERE published_at IS NULL"
        )
        parked = await conn.fetchval("SELECT count(*) FROM kernel_dead_letters")
        return int(waiting), int(parked)
    finally:
        await conn.close()


def _confirmed_once(cluster: Cluster, order_ids: list[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        confirmed = asyncio.run(_confirmations(cluster.dsn, order_ids))
        if len(confirmed) == len(order_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1)  # room for a confirmation sent twice to show
    confirmed = asyncio.run(_confirmations(cluster.dsn, order_ids))
    assert confirmed == dict.fromkeys(order_ids, 1)


def _sold_exactly(cluster: Cluster, staff: Staff, sku: str, tally: Tally, stock: int) -> list[str]:
    assert tally.statuses == {201: stock, 409: len(tally.purchases) - stock}, tally.codes
    level = staff.stock(sku)
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    paid = sorted(o["id"] for o in staff.orders_for(sku) if o["status"] == "paid")
    assert paid == sorted(p.body["id"] for p in tally.purchases if p.status == 201)
    return paid


def test_a_flash_sale_across_two_web_processes_sells_the_stock_and_confirms_each_once(
    cluster: Cluster, staff: Staff
) -> None:
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)

    tally = asyncio.run(_split_sale(cluster, sku, buyers))

    paid = _sold_exactly(cluster, staff, sku, tally, stock)
    _confirmed_once(cluster, paid)
    assert asyncio.run(_left_over(cluster.dsn)) == (0, 0)


def test_a_killed_relay_and_worker_and_a_restarted_broker_lose_and_double_nothing(
    cluster: Cluster, staff: Staff
) -> None:
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)

    async def sale_with_faults() -> Tally:
        sale = asyncio.create_task(_split_sale(cluster, sku, buyers))
        await asyncio.sleep(0.3)
        cluster.kill_worker_and_relay()
        cluster.nats.stop()
        await asyncio.sleep(1.5)
        cluster.nats.start()
        cluster.start_relay()
        cluster.start_worker()
        return await sale

    tally = asyncio.run(sale_with_faults())

    paid = _sold_exactly(cluster, staff, sku, tally, stock)
    _confirmed_once(cluster, paid, seconds=90)
    # Events the killed relay had claimed wait out their lease before the new one takes them.
    assert _drained(cluster.dsn, seconds=LEASE.total_seconds() + 30) == (0, 0)
