"""Inventory in a process and a database of its own (`serve --modules inventory` with
COLONNADE_INVENTORY_DATABASE_URL), the rest of the shop in processes on the shop's database
that call it over NATS (`serve`, every other module): checkout holds, sells and gives back
stock there, the store's pages read availability there, and the stockroom asks the catalog
whether a SKU it stocks exists; PostgreSQL, and a NATS server of the test's own. A flash sale
split across two shopfront replicas sells exactly the stock. With the stockroom SIGKILLed and
started again in the middle of one, every 201 a buyer saw is a paid order, no stock stays
held, no money is kept without an order, and no checkout is left midway. With the shopfront
SIGKILLed in the middle of one, its restart finishes or undoes the checkouts it left, and
each unit is sold once. With the NATS server stopped and started again in the middle of one,
the same holds: a call waits for the broker's return or fails in time, and nothing is kept."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import pytest

from tests.conftest import OwnNats, PostgresServer, free_port, sqlalchemy_url
from tests.e2e.buyers import Purchase, Tally, buy, checkout_body, flash_sale
from tests.e2e.conftest import RunningShop, start_shop, stop
from tests.e2e.staff import Staff

STOCKROOM = ("--modules", "inventory")
# Every module but inventory, whose database is not the shop's.
SHOPFRONT: tuple[str, ...] = ()


@dataclass
class Split:
    stockroom: subprocess.Popen[bytes]
    stockroom_env: dict[str, str]
    shopfront: subprocess.Popen[bytes]
    shopfront_env: dict[str, str]
    shopfront_url: str
    # A second replica of the shopfront, for a sale split across the two.
    replica: subprocess.Popen[bytes]
    replica_url: str
    staff: Staff
    shop_staff: Staff
    dsn: str
    workdir: Path
    # The NATS server the calls and events go through, to stop and start.
    broker: OwnNats

    def restart_stockroom(self) -> None:
        """Started again (on a port of its own: staff ask it there from now on)."""
        self.stockroom, url = start_shop(self.stockroom_env, self.workdir, *STOCKROOM)
        self.staff = Staff(url, self.staff.headers)

    def restart_shopfront(self) -> None:
        """Started again (on a port of its own: buyers come there from now on)."""
        self.shopfront, self.shopfront_url = start_shop(
            self.shopfront_env, self.workdir, *SHOPFRONT
        )
        self.shop_staff = Staff(self.shopfront_url, self.staff.headers)


@pytest.fixture(scope="module")
def split(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    workdir = tmp_path_factory.mktemp("remote-inventory")
    broker = OwnNats(workdir / "jetstream")
    broker.start()
    dsn = postgres.create_database("colonnade_remote_inventory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
    env.update(
        COLONNADE_DATABASE_URL=sqlalchemy_url(dsn),
        COLONNADE_BUS_URL=broker.url,
        COLONNADE_SECRET_KEY="end-to-end-tests-only-" + "k" * 32,
        COLONNADE_REMOTE_CALL_SECONDS="2",
        # A checkout cut off by the stockroom's death is finished or undone soon after.
        COLONNADE_CHECKOUT_RECOVERY_SECONDS="2",
    )
    env["COLONNADE_INVENTORY_DATABASE_URL"] = sqlalchemy_url(
        postgres.create_database("colonnade_remote_stockroom")
    )
    stockroom_env = {**env, "COLONNADE_METRICS_PORT": str(free_port())}
    stockroom, stockroom_url = start_shop(stockroom_env, workdir, *STOCKROOM)
    shopfront_env = {**env, "COLONNADE_METRICS_PORT": str(free_port())}
    # The demo shop's stock goes to the stockroom.
    shopfront, shopfront_url = start_shop(shopfront_env, workdir, *SHOPFRONT, "--demo-data")
    replica, replica_url = start_shop(
        {**shopfront_env, "COLONNADE_METRICS_PORT": str(free_port())}, workdir, *SHOPFRONT
    )
    shop_staff = Staff.sign_in(RunningShop(shopfront_url, shopfront_env, workdir))
    staff = Staff(stockroom_url, shop_staff.headers)
    running = Split(
        stockroom=stockroom,
        stockroom_env=stockroom_env,
        shopfront=shopfront,
        shopfront_env=shopfront_env,
        shopfront_url=shopfront_url,
        replica=replica,
        replica_url=replica_url,
        staff=staff,
        shop_staff=shop_staff,
        dsn=dsn,
        workdir=workdir,
        broker=broker,
    )
    try:
        yield running
    finally:
        stop(running.replica)
        stop(running.shopfront)
        stop(running.stockroom)
        running.broker.stop()


# Buyers at once in a sale cut off midway: few enough that it lasts until the cut.
SELLING = 10


async def _selling(split: Split, sku: str, sale: asyncio.Task[Tally]) -> None:
    """Once the sale has sold a few units, and is still going."""
    deadline = time.monotonic() + 30
    while True:
        level = await asyncio.to_thread(split.staff.stock, sku)
        if level["sold"] + level["reserved"] >= 3:
            break
        assert time.monotonic() < deadline, f"the sale did not get going: {level}"
        await asyncio.sleep(0.02)
    assert not sale.done(), "the sale ended before it could be cut off"


async def _left_midway(dsn: str) -> tuple[int, int]:
    """Checkouts not finished, and payments that keep money without an order."""
    conn = await asyncpg.connect(dsn)
    try:
        midway = await conn.fetchval(
            "SELECT count(*) FROM checkout_checkouts WHERE step NOT IN ('completed', 'failed')"
        )
        kept = await conn.fetchval(
            "SELECT count(*) FROM payments_payments"
            " WHERE captured_amount > refunded_amount AND order_id IS NULL"
        )
        return int(midway), int(kept)
    finally:
        await conn.close()


def _settled(split: Split, sku: str, seconds: float) -> dict[str, int]:
    """The SKU's stock once it has settled: no reservation held, no checkout midway, no money
    kept without an order, and units sold for exactly the paid orders (a cancelled order's
    units come back through its OrderCancelled event; recovery runs every 10 s); or as it
    stands after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        level = split.staff.stock(sku)
        left = asyncio.run(_left_midway(split.dsn))
        if (level["reserved"], *left) == (0, 0, 0) and level["sold"] == len(_paid(split, sku)):
            return dict(level)
        if time.monotonic() > deadline:
            return dict(level)
        time.sleep(0.5)


def _on_the_shelf(split: Split, sku: str, label: str) -> str | None:
    """How the shopfront's listing labels the SKU, once it is `label` or after a few seconds
    (a shelf's stock is looked at again every half second)."""
    deadline = time.monotonic() + 10
    while True:
        listed = httpx.get(
            split.shopfront_url + "/store/products",
            params={"market": "US", "q": sku, "limit": 100},
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        shown = {v["sku"]: v["stock"] for p in listed.json() for v in p["variants"]}
        if shown.get(sku) == label or time.monotonic() > deadline:
            return shown.get(sku)
        time.sleep(0.2)


def _paid(split: Split, sku: str) -> list[str]:
    return sorted(o["id"] for o in split.shop_staff.orders_for(sku) if o["status"] == "paid")


def test_a_flash_sale_on_two_shopfronts_with_inventory_elsewhere_sells_exactly_the_stock(
    split: Split,
) -> None:
    stock, buyers = 20, 200
    sku = split.shop_staff.new_product(price_cents=4999, on_hand=stock, stockroom=split.staff)

    async def split_between_replicas() -> Tally:
        halves = await asyncio.gather(
            flash_sale(split.shopfront_url, sku, buyers // 2),
            flash_sale(split.replica_url, sku, buyers // 2),
        )
        return Tally([purchase for half in halves for purchase in half.purchases])

    # The shelf shows what the stockroom has.
    assert _on_the_shelf(split, sku, "in_stock") == "in_stock"
    tally = asyncio.run(split_between_replicas())

    assert tally.statuses == {201: stock, 409: buyers - stock}, tally.codes
    assert _on_the_shelf(split, sku, "sold_out") == "sold_out"
    assert tally.codes["out_of_stock"] == buyers - stock
    level = _settled(split, sku, seconds=30)
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    assert _paid(split, sku) == sorted(p.body["id"] for p in tally.purchases if p.status == 201)


def test_a_killed_stockroom_loses_no_unit_and_keeps_no_money(split: Split) -> None:
    stock, buyers = 20, 100
    sku = split.shop_staff.new_product(price_cents=4999, on_hand=stock, stockroom=split.staff)

    async def kill() -> None:
        split.stockroom.kill()
        split.stockroom.wait(timeout=10)

    cut_off = asyncio.run(_cut_off(split, sku, _checkouts(split, sku, buyers), kill))
    split.restart_stockroom()
    # What the cut-off checkouts held comes back (recovery, cancelled orders' events); buyers
    # who come once it is back buy what is left, and no more.
    between, later, level = _recovered(split, sku, buyers)

    tally = Tally(cut_off.purchases + later.purchases)
    sold = sorted(p.body["id"] for p in tally.purchases if p.status == 201)
    # Each buyer: an order, sold out, or the stockroom's absence (503); nothing else.
    assert set(cut_off.statuses) <= {201, 409, 503}, cut_off.codes
    assert cut_off.codes["module_unavailable"] > 0, "the stockroom was away during the sale"
    assert between["sold"] == cut_off.statuses[201]
    assert between["reserved"] == 0
    assert later.statuses == {201: stock - between["sold"], 409: buyers - stock + between["sold"]}
    # Every unit sold once, to a paid order a buyer saw; nothing held, kept or midway.
    assert _paid(split, sku) == sold
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    assert len(sold) == stock
    assert asyncio.run(_left_midway(split.dsn)) == (0, 0)


async def _cut_off(
    split: Split, sku: str, sale: Coroutine[Any, Any, Tally], fault: Callable[[], Awaitable[None]]
) -> Tally:
    """The sale, with `fault` done once it has sold a few units and is still going."""
    selling = asyncio.create_task(sale)
    await _selling(split, sku, selling)
    await fault()
    return await selling


async def _checkouts(split: Split, sku: str, buyers: int) -> Tally:
    """Buyers' carts filled first (the stockroom prices them); then the checkouts, ten at a
    time, so the sale is still going when a fault strikes."""
    carts = await _filled_carts(split.shopfront_url, sku, buyers)
    return await _check_out(split.shopfront_url, carts)


def _recovered(split: Split, sku: str, buyers: int) -> tuple[dict[str, int], Tally, dict[str, int]]:
    """The SKU's stock once what a fault left has settled; a second wave of buyers; and the
    stock once that has settled."""
    between = _settled(split, sku, seconds=90)
    later = asyncio.run(flash_sale(split.shopfront_url, sku, buyers))
    return between, later, _settled(split, sku, seconds=60)


async def _filled_carts(base_url: str, sku: str, buyers: int) -> list[str]:
    async with aiohttp.ClientSession() as session:

        async def one() -> str:
            async with session.post(f"{base_url}/store/carts", json={"market": "US"}) as made:
                assert made.status == 201, await made.text()
                cart_id: str = (await made.json())["id"]
            async with session.post(
                f"{base_url}/store/carts/{cart_id}/lines", json={"sku": sku, "quantity": 1}
            ) as added:
                assert added.status == 200, await added.text()
            return cart_id

        return list(await asyncio.gather(*(one() for _ in range(buyers))))


async def _check_out(base_url: str, carts: list[str]) -> Tally:
    connector = aiohttp.TCPConnector(limit=SELLING)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(cart_id: str) -> Purchase:
            key = uuid.uuid4().hex
            async with session.post(
                f"{base_url}/store/carts/{cart_id}/checkout",
                json=checkout_body(),
                headers={"Idempotency-Key": key},
            ) as response:
                return Purchase(response.status, await response.json(content_type=None), key)

        return Tally(list(await asyncio.gather(*(one(c) for c in carts))))


async def _buyers_cut_off(base_url: str, sku: str, buyers: int) -> Tally:
    """A flash sale whose server may die under it: a buyer whose request got no answer is
    counted with status 0."""
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=SELLING)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> Purchase:
            try:
                return await buy(session, base_url, sku)
            except (TimeoutError, aiohttp.ClientError, AssertionError):
                return Purchase(0, {}, "")

        return Tally(list(await asyncio.gather(*(one() for _ in range(buyers)))))


def test_a_killed_shopfront_is_recovered_and_sells_each_unit_once(split: Split) -> None:
    stock, buyers = 20, 100
    sku = split.shop_staff.new_product(price_cents=4999, on_hand=stock, stockroom=split.staff)

    async def kill() -> None:
        split.shopfront.kill()
        split.shopfront.wait(timeout=10)

    sale = _buyers_cut_off(split.shopfront_url, sku, buyers)
    cut_off = asyncio.run(_cut_off(split, sku, sale, kill))
    split.restart_shopfront()
    # The checkouts it left midway are finished or undone by the restarted one's recovery.
    between, later, level = _recovered(split, sku, buyers)

    seen = {p.body["id"] for p in cut_off.purchases + later.purchases if p.status == 201}
    paid = _paid(split, sku)
    assert cut_off.statuses[0] > 0, "buyers were cut off"
    assert set(cut_off.statuses) <= {0, 201, 409}, cut_off.codes
    # Every 201 a buyer saw is a paid order (some paid orders' buyers saw no answer: their
    # retry under the same key gets it); each unit sold once, to a paid order.
    assert seen <= set(paid)
    assert between["sold"] == len(paid) - later.statuses[201]
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    assert len(paid) == stock
    assert asyncio.run(_left_midway(split.dsn)) == (0, 0)


def test_a_broker_restarted_mid_sale_loses_no_unit_and_keeps_no_money(split: Split) -> None:
    """NATS carries every call to the stockroom: while it is away, a checkout that cannot
    hold or sell its stock answers 503 or waits for the broker's return, and nothing it took
    is kept."""
    stock, buyers = 20, 100
    sku = split.shop_staff.new_product(price_cents=4999, on_hand=stock, stockroom=split.staff)

    async def restart() -> None:
        split.broker.stop()
        await asyncio.sleep(1)
        split.broker.start()

    cut_off = asyncio.run(_cut_off(split, sku, _checkouts(split, sku, buyers), restart))
    between, later, level = _recovered(split, sku, buyers)

    sold = sorted(p.body["id"] for p in cut_off.purchases + later.purchases if p.status == 201)
    assert set(cut_off.statuses) <= {201, 409, 503}, cut_off.codes
    assert between["sold"] == cut_off.statuses[201]
    assert between["reserved"] == 0
    assert set(later.statuses) <= {201, 409}, later.codes
    assert later.statuses[201] == stock - between["sold"]
    assert _paid(split, sku) == sold
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    assert asyncio.run(_left_midway(split.dsn)) == (0, 0)
