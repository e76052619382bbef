"""Rate limits counted in Redis: every process of the shop draws on one bucket per client,
so a limit of N admits N across all of them, however the requests are spread; while Redis is
down, each process limits on its own as it does without Redis."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from colonnade.kernel.settings import Settings
from colonnade.kernel.shared_state import connect
from colonnade.web.limits import RateLimiter
from colonnade.web.shared_limits import SharedRateLimiter
from tests.integration.storefront import client, started

pytestmark = pytest.mark.redis

SECRET = "shared-rate-limit-tests-" + "r" * 32
# These tests prove sharing, not outages: on a loaded machine the event loop can stall past
# the default half second, which would count as Redis down and split the shared state.
SHARING_TIMEOUT = 10.0
# Redis refuses connections on this port: Redis is down.
NOBODY = "redis://127.0.0.1:1/0"


def shared(redis: Redis, prefix: str) -> SharedRateLimiter:
    return SharedRateLimiter(redis, prefix=prefix, fallback=RateLimiter())


def fallbacks(use: str) -> float:
    return REGISTRY.get_sample_value("colonnade_redis_fallbacks_total", {"use": use}) or 0.0


async def test_two_limiters_sharing_redis_admit_exactly_the_limit_between_them(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    one, other = (shared(redis, redis_prefix) for redis in redis_clients)
    wants = [("login:address:203.0.113.9", 50, 3600.0)]

    answers = await asyncio.gather(*((one if n % 2 else other).take(wants) for n in range(400)))

    assert answers.count(0) == 50
    # 50 an hour: the next token is 72 seconds away.
    assert set(answers) - {0} == {72}


async def test_the_shared_buckets_follow_the_in_process_arithmetic(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    one, other = (shared(redis, redis_prefix) for redis in redis_clients)
    login = [("login:address:10.0.0.1", 5, 60.0)]
    assert [await (one, other)[n % 2].take(login) for n in range(5)] == [0] * 5
    assert await one.take(login) == 12  # one token back every 12 seconds

    address = ("checkout:address:10.0.0.1", 3, 60.0)
    assert await one.take([address, ("checkout:account:cart-1", 1, 60.0)]) == 0
    # The cart is spent, so the address keeps its tokens for other carts.
    assert await other.take([address, ("checkout:account:cart-1", 1, 60.0)]) == 60
    assert await other.take([address, ("checkout:account:cart-2", 1, 60.0)]) == 0
    assert await one.take([address, ("checkout:account:cart-3", 1, 60.0)]) == 0
    assert await other.take([address, ("checkout:account:cart-4", 1, 60.0)]) == 20


async def test_buckets_live_under_the_prefix_and_expire_once_full_again(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    redis = redis_clients[0]
    await shared(redis, redis_prefix).take([("login:address:10.0.0.2", 5, 60.0)])

    key = f"{redis_prefix}:rl:login:address:10.0.0.2"
    assert await redis.hget(key, "tokens") == b"4"
    assert 59_000 < await redis.pttl(key) <= 60_000


async def test_while_redis_is_down_each_process_limits_on_its_own() -> None:
    before = fallbacks("rate_limits")
    unreachable = connect(NOBODY, timeout_seconds=0.5)
    try:
        limiter = shared(unreachable, "colonnade")
        wants = [("login:address:10.0.0.3", 3, 60.0)]
        assert [await limiter.take(wants) for _ in range(4)] == [0, 0, 0, 20]
    finally:
        await unreachable.aclose()
    assert fallbacks("rate_limits") - before == 4


async def test_two_apps_sharing_redis_admit_exactly_the_limit_across_both(
    redis_url: str, redis_prefix: str, sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "colonnade.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        secret_key=SECRET,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        redis_timeout_seconds=SHARING_TIMEOUT,
        rate_limit_login_per_address=7,
    )
    async with (
        started(settings) as one,
        started(settings) as other,
        client(one, "198.51.100.20") as to_one,
        client(other, "198.51.100.20") as to_other,
    ):
        answers = await asyncio.gather(
            *(
                (to_one if n % 2 else to_other).post(
                    "/auth/token", data={"username": f"c{n}@example.com", "password": "wrong"}
                )
                for n in range(40)
            )
        )

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == 7
    assert statuses.count(429) == 33
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
