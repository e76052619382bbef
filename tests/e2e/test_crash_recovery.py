"""A shop killed with SIGKILL in the middle of a flash sale, then started again: no paid order
is lost, no stock stays held, no authorization is left without its order or its void."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from colonnade.kernel.db import Database
from tests.e2e.buyers import Purchase, buy
from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
from tests.e2e.staff import Staff

STOCK = 40
BUYERS = 120


@pytest.fixture(params=["sqlite", "postgresql"])
def crashing_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningShop]:
    env = shop_environment(request, tmp_path, checkout_recovery_seconds="1")
    process, base_url = start_shop(env, tmp_path, "--demo-data")
    shop = RunningShop(base_url, env, tmp_path)
    shop.process = process  # type: ignore[attr-defined]
    yield shop
    stop(shop.process)  # type: ignore[attr-defined]


async def buy_until_killed(shop: RunningShop, sku: str) -> list[Purchase | BaseException]:
    """Buyers rush in; once a few have paid, the server is killed mid-flight."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.create_task(buy(session, shop.base_url, sku)) for _ in range(BUYERS)]
        paid = 0
        for finished in asyncio.as_completed(tasks, timeout=60):
            purchase = await finished
            paid += purchase.status == 201
            if paid == 5:
                break
        os.kill(shop.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        return await asyncio.gather(*tasks, return_exceptions=True)


async def charges_without_an_order(database_url: str) -> list[str]:
    """Money the card processor (the test gateway) holds that no paid order accounts for:
    a charge captured and not given back, whose payment is not the payment of a paid order."""
    db = Database(database_url)
    try:
        async with db.reading() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.id FROM payments_gateway_charges c "
                    "LEFT JOIN payments_payments p ON p.id = c.authorize_key "
                    "LEFT JOIN orders_orders o ON o.payment_id = p.id AND o.status = 'paid' "
                    "WHERE c.captured_amount > c.refunded_amount AND o.id IS NULL"
                )
            )
            return [r.id for r in rows]
    finally:
        await db.dispose()


async def unsettled_payments(database_url: str) -> list[tuple[str, str]]:
    """Payments that hold a customer's money without an order or a void."""
    db = Database(database_url)
    try:
        async with db.reading() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, status FROM payments_payments "
                    "WHERE status IN ('authorizing', 'authorized', 'unknown') "
                    "OR (status = 'captured' AND order_id IS NULL)"
                )
            )
            return [(r.id, r.status) for r in rows]
    finally:
        await db.dispose()


def test_a_killed_shop_loses_no_paid_order_and_holds_no_stock(crashing_shop: RunningShop) -> None:
    staff = Staff.sign_in(crashing_shop)
    sku = staff.new_product(price_cents=2500, on_hand=STOCK)

    outcomes = asyncio.run(buy_until_killed(crashing_shop, sku))
    crashing_shop.process.wait(timeout=10)  # type: ignore[attr-defined]
    answered_paid = {o.body["id"] for o in outcomes if isinstance(o, Purchase) and o.status == 201}
    assert answered_paid, "the server was killed before any purchase completed"
    assert any(isinstance(o, BaseException) for o in outcomes), "nothing was in flight"

    time.sleep(1.5)  # let unfinished checkouts age past the recovery threshold
    process, base_url = start_shop(crashing_shop.env, crashing_shop.workdir)
    crashing_shop.process = process  # type: ignore[attr-defined]
    staff.base_url = base_url

    deadline = time.monotonic() + 60
    while staff.stock(sku)["reserved"] and time.monotonic() < deadline:
        time.sleep(0.5)
    level = staff.stock(sku)
    orders = staff.orders_for(sku)
    paid = [o for o in orders if o["status"] == "paid"]

    assert level["reserved"] == 0
    assert answered_paid <= {o["id"] for o in paid}
    assert level["sold"] == len(paid)
    assert level["available"] == STOCK - len(paid)
    assert {o["status"] for o in orders} <= {"paid", "cancelled"}
    for order in orders:
        payment = staff.payment_of(order["id"])
        if order["status"] == "paid":
            assert (payment["status"], payment["captured"]) == ("captured", order["total"])
        else:
            assert payment["status"] in ("voided", "refunded")
    database_url = crashing_shop.env["COLONNADE_DATABASE_URL"]
    assert asyncio.run(unsettled_payments(database_url)) == []
    assert asyncio.run(charges_without_an_order(database_url)) == []
