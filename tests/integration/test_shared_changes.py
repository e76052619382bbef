"""Word of committed changes through Redis: another process forgets what a staff change made
stale as soon as it is published, long before its next poll of the outbox; each event is
delivered once however it arrives, and with Redis down the poll still delivers it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from colonnade.app import Shop
from colonnade.kernel.change_fanout import RedisFanout
from colonnade.kernel.changes import Changes
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.kernel.shared_state import connect
from colonnade.modules.pricing.service import PricingService
from tests.integration.storefront import client, product, started
from tests.integration.test_changes import Heard

pytestmark = pytest.mark.redis

SECRET = "shared-changes-tests-" + "c" * 32
# These tests prove sharing, not outages: on a loaded machine the event loop can stall past
# the default half second, which would count as Redis down and split the shared state.
SHARING_TIMEOUT = 10.0
# Far longer than any wait below: whatever arrives in time came through Redis.
NO_POLL = 3600.0
AT_ONCE = 0.5


async def listening(redis: Redis, prefix: str, processes: int) -> None:
    """Wait until `processes` processes listen on the shop's channel."""
    channel = f"{prefix}:changes"
    for _ in range(100):
        [(_, count)] = await redis.pubsub_numsub(channel)
        if count >= processes:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {processes} processes listen on {channel}")


async def until(holds: Callable[[], Awaitable[bool]], seconds: float) -> float:
    """How long until `holds()` is true; fails after `seconds`."""
    began = time.monotonic()
    while not await holds():
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


async def test_another_process_hears_of_a_change_at_once_and_only_once(
    db: Database, redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    here, there = (
        Changes(db, poll_seconds=NO_POLL, fanout=RedisFanout(redis, prefix=redis_prefix))
        for redis in redis_clients
    )
    heard_here, heard_there = Heard(here), Heard(there)
    here.start()
    there.start()
    try:
        await listening(redis_clients[0], redis_prefix, 2)
        pricing = PricingService(db, base_currency="USD", changes=here)

        await pricing.set_prices("KENYA-1", [Money(900, "USD")])

        async def heard() -> bool:
            return heard_there.skus == ["KENYA-1"]

        assert await until(heard, AT_ONCE) < AT_ONCE
        assert heard_there.events[0][1]["prices"] == [{"amount": 900, "currency": "USD"}]
        # The poll finds the event in the outbox too, and the writer hears its own message.
        await there.catch_up()
        await here.catch_up()
        assert (heard_here.skus, heard_there.skus) == (["KENYA-1"], ["KENYA-1"])
    finally:
        await here.stop()
        await there.stop()


async def test_with_redis_down_the_poll_still_delivers_the_change(db: Database) -> None:
    unreachable = connect("redis://127.0.0.1:1/0", timeout_seconds=0.5)
    here = Changes(db, fanout=RedisFanout(unreachable, prefix="colonnade"))
    there = Changes(db)
    heard_there = Heard(there)
    await there.catch_up()
    try:
        pricing = PricingService(db, base_currency="USD", changes=here)
        await pricing.set_prices("KENYA-2", [Money(900, "USD")])
        await here.stop()  # the publish has failed by now, quietly

        await there.catch_up()
        assert heard_there.skus == ["KENYA-2"]
    finally:
        await unreachable.aclose()


async def test_a_price_changed_in_one_app_is_in_the_others_cached_listing_at_once(
    database_url: str, redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        redis_timeout_seconds=SHARING_TIMEOUT,
        changes_poll_seconds=NO_POLL,
    )
    async with (
        started(settings, us_tax=Decimal("0")) as one,
        started(settings) as other,
        client(other) as shopper,
    ):
        writer: Shop = one.state.shop
        assert writer.redis is not None
        await listening(writer.redis, redis_prefix, 2)
        sku = await product(writer, price=1000)

        async def price() -> int:
            listing = await shopper.get("/store/products", params={"market": "US"})
            return next(
                int(v["price"]["amount"])
                for p in listing.json()
                for v in p["variants"]
                if v["sku"] == sku
            )

        assert await price() == 1000
        assert await price() == 1000  # answered from the other app's memory now

        await writer.pricing.set_prices(sku, [Money(750, "USD")])

        async def repriced() -> bool:
            return await price() == 750

        assert await until(repriced, AT_ONCE) < AT_ONCE
