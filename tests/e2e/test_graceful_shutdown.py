"""A shop told to stop (SIGTERM, as an orchestrator does when it rolls out a new version) while
buyers are paying: no new connections are taken, every purchase in flight gets its full answer,
and the events those purchases committed are all published before the process exits."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import httpx
import pytest
from sqlalchemy import text

from colonnade.kernel.db import Database
from tests.e2e.buyers import Purchase, buy
from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
from tests.e2e.staff import Staff

BUYERS = 4


async def at_the_provider(database_url: str) -> int:
    """Checkouts whose payment the provider is working on right now."""
    db = Database(database_url)
    try:
        async with db.reading() as conn:
            return int(
                await conn.scalar(
                    text("SELECT count(*) FROM payments_payments WHERE status = 'authorizing'")
                )
                or 0
            )
    finally:
        await db.dispose()


async def unpublished_events(database_url: str) -> tuple[int, int]:
    """(events in the outbox, events not yet published)."""
    db = Database(database_url)
    try:
        async with db.reading() as conn:
            total = await conn.scalar(text("SELECT count(*) FROM kernel_outbox"))
            waiting = await conn.scalar(
                text("SELECT count(*) FROM kernel_outbox WHERE published_at IS NULL")
            )
        return int(total or 0), int(waiting or 0)
    finally:
        await db.dispose()


def refuses_connections(base_url: str) -> bool:
    try:
        httpx.get(base_url + "/health/live", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


async def buy_then_terminate(
    process: subprocess.Popen[bytes], base_url: str, database_url: str, sku: str
) -> tuple[list[Purchase], bool]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        purchases = [asyncio.create_task(buy(session, base_url, sku)) for _ in range(BUYERS)]
        deadline = time.monotonic() + 60
        while await at_the_provider(database_url) < BUYERS:
            assert time.monotonic() < deadline, "the purchases never reached the provider"
            assert not any(p.done() for p in purchases), "a purchase ended before SIGTERM"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        refused = False
        while not refused and not all(p.done() for p in purchases):
            refused = await asyncio.to_thread(refuses_connections, base_url)
            await asyncio.sleep(0.1)
        return list(await asyncio.gather(*purchases)), refused


@pytest.fixture(params=["sqlite", "postgresql"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    # Each answer of the test gateway takes a while, as a real processor's does: the
    # purchases are still at the provider when the signal comes.
    return shop_environment(request, tmp_path, test_gateway_latency_seconds="1.5")


def test_sigterm_lets_purchases_in_flight_finish_and_flushes_the_outbox(
    environment: dict[str, str], tmp_path: Path
) -> None:
    env = environment
    process, base_url = start_shop(env, tmp_path, "--demo-data")
    try:
        staff = Staff.sign_in(RunningShop(base_url, env, tmp_path))
        sku = staff.new_product(price_cents=1500, on_hand=10)
        database_url = env["COLONNADE_DATABASE_URL"]

        purchases, refused = asyncio.run(buy_then_terminate(process, base_url, database_url, sku))

        assert [p.status for p in purchases] == [201] * BUYERS, [p.body for p in purchases]
        assert all(p.body["status"] == "paid" for p in purchases)
        assert refused, "the shop still took new connections after SIGTERM"
        # After shutting down cleanly, uvicorn ends the process by the signal it was sent.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        stop(process)
    total, waiting = asyncio.run(unpublished_events(database_url))
    assert total > 0
    assert waiting == 0
