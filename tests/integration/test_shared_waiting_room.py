"""One waiting room for every process of a shop, through a real Redis.

Two shops on one database and one Redis stand for two replicas behind the edge: a buyer's
every request may reach either. The queue is one: numbers are unique, called in order
wherever the holder comes back, and the places are the two limits together. A process that
dies mid checkout gives its place back when the lease ends; a Redis that lost its keys or
cannot be reached costs the sharing, never a sale.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from decimal import Decimal

import httpx
import jwt
from redis.asyncio import Redis

from colonnade.app import Shop
from colonnade.kernel.settings import Settings
from colonnade.modules.checkout.shared_waiting_room import SharedQueue
from colonnade.modules.checkout.waiting_room import Admitted, Places, Ticket, Waits
from tests.conftest import count_rows
from tests.e2e.buyers import checkout_body
from tests.integration.storefront import SECRET, client, product, started

# A process's limit of one, calling one holder at a time.
ONE = Places(1, 1)


def _ticket(number: int, room: str, now: float) -> Ticket:
    return Ticket(number, "cart", now + 600, uuid.uuid4().hex, room, now)


async def test_the_processes_share_one_queue_and_their_places(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    one, other = (
        SharedQueue(redis, prefix=redis_prefix, call_seconds=10) for redis in redis_clients
    )
    now = 1_000.0
    # Each process's limit is one: two places between them.
    first = await one.arrive(ONE, now)
    second = await other.arrive(ONE, now)
    assert isinstance(first, Admitted)
    assert isinstance(second, Admitted)
    waits = [await queue.arrive(ONE, now) for queue in (one, other, one)]
    assert all(isinstance(w, Waits) for w in waits)
    numbers = [w.number for w in waits if isinstance(w, Waits)]
    assert numbers == [1, 2, 3]
    room = waits[0].room if isinstance(waits[0], Waits) else ""

    await one.leave(first, ONE, now + 1)
    # Numbers 1 and 2 are called; 2 comes back first, to the other process, and is let in.
    assert isinstance(await other.come_back(_ticket(2, room, now), ONE, now + 1), Admitted)
    # A newcomer queues behind number 3 and the awaited number 1.
    newcomer = await one.arrive(ONE, now + 1)
    assert isinstance(newcomer, Waits)
    assert (newcomer.number, newcomer.ahead) == (4, 2)
    # Number 1 waits for a place: both are taken, and number 3 is called and awaited too.
    late = await one.come_back(_ticket(1, room, now), ONE, now + 1)
    assert isinstance(late, Waits)
    assert late.ahead == 1


async def test_a_dead_process_gives_its_place_back_when_the_lease_ends(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    dead, alive = (
        SharedQueue(redis, prefix=redis_prefix, call_seconds=10, lease_seconds=60, room_seconds=30)
        for redis in redis_clients
    )
    now = 1_000.0
    assert isinstance(await dead.arrive(ONE, now), Admitted)  # never leaves
    assert isinstance(await alive.arrive(ONE, now), Admitted)
    held = await alive.arrive(ONE, now + 1)
    assert isinstance(held, Waits)
    # The dead process's limit no longer counts after 30 s; its place is taken till 60 s.
    later = await alive.arrive(ONE, now + 40)
    assert isinstance(later, Waits)
    # The live process's own place is taken too (it never left): at 61 s both leases are
    # over and the one place left, the live process's, goes to number 1.
    back = await alive.come_back(_ticket(held.number, held.room, now), ONE, now + 61)
    assert isinstance(back, Admitted)


async def test_a_ticket_of_a_redis_that_lost_its_keys_waits_only_for_a_free_place(
    redis_clients: tuple[Redis, Redis], redis_prefix: str
) -> None:
    redis, _ = redis_clients
    queue = SharedQueue(redis, prefix=redis_prefix, call_seconds=10)
    now = 1_000.0
    running = await queue.arrive(ONE, now)
    assert isinstance(running, Admitted)
    for _ in range(5):
        assert isinstance(await queue.arrive(ONE, now), Waits)
    late = await queue.arrive(ONE, now)
    assert isinstance(late, Waits)
    assert late.number == 6
    await redis.delete(*[key async for key in redis.scan_iter(match=f"{redis_prefix}:*")])

    # Counted again from 1, number 6 of the old queue is not made to wait for five others.
    assert isinstance(await queue.come_back(_ticket(6, late.room, now), ONE, now + 1), Admitted)


async def test_buyers_sent_to_either_replica_share_one_queue_and_its_places(
    database_url: str, redis_url: str, redis_prefix: str
) -> None:
    def settings() -> Settings:
        return Settings(
            database_url=database_url,
            secret_key=SECRET,
            checkout_concurrency=1,
            test_gateway_latency_seconds=0.2,
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
        )

    async with (
        started(settings(), us_tax=Decimal("0.1")) as one,
        started(settings()) as other,
        client(one) as http_one,
        client(other) as http_other,
    ):
        shops: list[Shop] = [one.state.shop, other.state.shop]
        stock, buyers = 6, 18
        sku = await product(shops[0], on_hand=stock)
        edge = itertools.cycle([http_one, http_other])
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, sum(s.waiting_room.in_flight for s in shops if s.waiting_room))
                await asyncio.sleep(0.005)

        async def buy() -> tuple[int | None, int, str]:
            made = await next(edge).post("/store/carts", json={"market": "US"})
            cart = made.json()["id"]
            await next(edge).post(f"/store/carts/{cart}/lines", json={"sku": sku, "quantity": 1})
            key, ticket, number = uuid.uuid4().hex, None, None
            while True:
                headers = {"Idempotency-Key": key} | (
                    {} if ticket is None else {"Queue-Ticket": ticket}
                )
                http: httpx.AsyncClient = next(edge)
                answer = await http.post(
                    f"/store/carts/{cart}/checkout", json=checkout_body(), headers=headers
                )
                body = answer.json()
                if answer.status_code == 503 and body["code"] == "checkout_queued":
                    ticket = body["ticket"]
                    if number is None:
                        claims = jwt.decode(ticket, options={"verify_signature": False})
                        number = int(claims["n"])
                    await asyncio.sleep(body["retry_after"] / 10)
                    continue
                return number, answer.status_code, body["checkout_id"]

        watching = asyncio.create_task(watch())
        answers = await asyncio.gather(*(buy() for _ in range(buyers)))
        watching.cancel()

        assert Counter(status for _, status, _ in answers) == {201: stock, 409: buyers - stock}
        # Two places between the two replicas, and both were used.
        assert most == 2
        # One queue: every ticket across both replicas has a number of its own.
        numbers = [number for number, _, _ in answers if number is not None]
        assert len(numbers) == len(set(numbers)) >= buyers - 2
        level = await shops[0].inventory.stock(sku)
        assert (level.sold, level.reserved) == (stock, 0)
        assert await count_rows(shops[0].db, "payments_payments") == stock


async def test_a_shop_whose_redis_does_not_answer_queues_on_its_own(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        checkout_concurrency=1,
        # Nothing listens there.
        redis_url="redis://127.0.0.1:1/0",
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        shop: Shop = app.state.shop
        assert shop.waiting_room is not None
        sku = await product(shop, on_hand=3)
        made = await http.post("/store/carts", json={"market": "US"})
        cart = made.json()["id"]
        await http.post(f"/store/carts/{cart}/lines", json={"sku": sku, "quantity": 1})
        running = await shop.waiting_room.enter("someone-else", None)

        queued = await http.post(
            f"/store/carts/{cart}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "queued-key-1"},
        )
        assert (queued.status_code, queued.json()["code"]) == (503, "checkout_queued")
        await running.leave()
        bought = await http.post(
            f"/store/carts/{cart}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "queued-key-1", "Queue-Ticket": queued.json()["ticket"]},
        )
        assert bought.status_code == 201, bought.text
        assert (await shop.inventory.stock(sku)).sold == 1
