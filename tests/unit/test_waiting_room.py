"""The waiting room's rules on a clock of the test's own: who is let in, who waits with which
ticket, in what order numbers are called, and which tickets are refused."""

from __future__ import annotations

import jwt
import pytest

from colonnade.modules.checkout.admission_limit import FixedLimit
from colonnade.modules.checkout.waiting_room import (
    Admission,
    CheckoutQueued,
    QueueTicketExpired,
    QueueTicketInvalid,
    QueueTicketUsed,
    WaitingRoom,
)

SECRET = "waiting-room-tests-" + "k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def room(clock: Clock, limit: int = 2) -> WaitingRoom:
    return WaitingRoom(
        FixedLimit(limit), SECRET, ticket_seconds=600, call_seconds=10, clock=clock, timer=clock
    )


async def checked_out(admitted: Admission) -> None:
    """A checkout let in, begun and ended."""
    admitted.begin()
    await admitted.leave()


async def queued(waiting_room: WaitingRoom, cart: str, ticket: str | None = None) -> CheckoutQueued:
    with pytest.raises(CheckoutQueued) as raised:
        await waiting_room.enter(cart, ticket)
    return raised.value


async def test_checkouts_beyond_the_limit_wait_with_numbered_tickets(clock: Clock) -> None:
    shop = room(clock)
    first, second = await shop.enter("cart-1", None), await shop.enter("cart-2", None)
    third = await queued(shop, "cart-3")
    fourth = await queued(shop, "cart-4")

    assert isinstance(first, Admission)
    assert isinstance(second, Admission)
    assert shop.in_flight == 2
    assert (third.status, third.code) == (503, "checkout_queued")
    assert [third.extensions["position"], fourth.extensions["position"]] == [1, 2]
    assert third.extensions["retry_after"] >= 1
    assert third.extensions["ticket"] != fourth.extensions["ticket"]


def position(refusal: CheckoutQueued) -> int:
    at: int = refusal.extensions["position"]
    return at


async def test_numbers_are_called_in_order_and_no_newcomer_skips_the_queue(clock: Clock) -> None:
    shop = room(clock)
    running = [await shop.enter("cart-1", None), await shop.enter("cart-2", None)]
    first = (await queued(shop, "cart-3")).extensions["ticket"]
    second = (await queued(shop, "cart-4")).extensions["ticket"]
    # Numbers 1 and 2 are called (as many as there are places); 3 has both before it.
    third = await queued(shop, "cart-5")
    assert position(third) == 3
    # Every place is taken: a called holder waits for one, as does the other called holder
    # (told that one of them is likely to go first).
    assert position(await queued(shop, "cart-3", first)) == 2

    await checked_out(running.pop())
    # A place is free: a newcomer does not get it while called holders are awaited...
    assert position(await queued(shop, "cart-6")) == 4
    # ...a called holder does, whichever of them comes first.
    running.append(await shop.enter("cart-4", second))
    # Number 3 is called now, and waits for a place like number 1.
    assert position(await queued(shop, "cart-5", third.extensions["ticket"])) == 2
    assert position(await queued(shop, "cart-3", first)) == 2
    assert shop.in_flight == 2
    await checked_out(running.pop())
    running.append(await shop.enter("cart-3", first))
    assert shop.in_flight == 2


async def test_a_called_number_whose_holder_is_gone_does_not_stall_the_queue(clock: Clock) -> None:
    shop = room(clock, limit=1)
    running = await shop.enter("cart-1", None)
    await queued(shop, "cart-2")  # its holder never comes back
    second = (await queued(shop, "cart-3")).extensions["ticket"]

    clock.now += 6  # a slow checkout: one holder called at a time
    await checked_out(running)
    # Number 1 is awaited; number 2 waits behind it.
    assert position(await queued(shop, "cart-3", second)) == 2
    clock.now += 11  # number 1 is no longer awaited; number 2 is called
    assert isinstance(await shop.enter("cart-3", second), Admission)


async def test_a_ticket_lets_its_holder_in_once_for_its_cart_until_it_ends(clock: Clock) -> None:
    shop = room(clock, limit=1)
    running = await shop.enter("cart-1", None)
    ticket = (await queued(shop, "cart-2")).extensions["ticket"]
    expiring = (await queued(shop, "cart-3")).extensions["ticket"]
    await checked_out(running)

    with pytest.raises(QueueTicketInvalid):
        await shop.enter("cart-9", ticket)
    admitted = await shop.enter("cart-2", ticket)
    await checked_out(admitted)
    with pytest.raises(QueueTicketUsed):
        await shop.enter("cart-2", ticket)
    clock.now += 601
    with pytest.raises(QueueTicketExpired):
        await shop.enter("cart-3", expiring)


async def test_a_ticket_whose_checkout_never_began_lets_its_holder_in_again(clock: Clock) -> None:
    shop = room(clock, limit=1)
    running = await shop.enter("cart-1", None)
    ticket = (await queued(shop, "cart-2")).extensions["ticket"]
    await checked_out(running)

    refused_before_buying = await shop.enter("cart-2", ticket)
    await refused_before_buying.leave()
    assert shop.in_flight == 0
    # Its number was called already: it goes in at once, not to the end of the queue.
    bought = await shop.enter("cart-2", ticket)
    await checked_out(bought)
    with pytest.raises(QueueTicketUsed):
        await shop.enter("cart-2", ticket)


@pytest.mark.parametrize(
    "forged",
    [
        "not-a-ticket",
        jwt.encode(
            {"n": 1, "cart": "cart-2"},
            "another shop's secret, of a length HS256 asks for",
            algorithm="HS256",
        ),
    ],
)
async def test_a_forged_ticket_is_refused(clock: Clock, forged: str) -> None:
    shop = room(clock, limit=1)
    await shop.enter("cart-1", None)

    with pytest.raises(QueueTicketInvalid) as refused:
        await shop.enter("cart-2", forged)
    assert (refused.value.status, refused.value.code) == (422, "queue_ticket_invalid")


async def test_a_ticket_of_another_process_waits_only_for_a_free_place(clock: Clock) -> None:
    elsewhere, here = room(clock, limit=1), room(clock, limit=1)
    await elsewhere.enter("cart-1", None)
    ticket = (await queued(elsewhere, "cart-2")).extensions["ticket"]

    running = await here.enter("cart-3", None)
    assert (await queued(here, "cart-2", ticket)).extensions["position"] == 1
    await checked_out(running)
    assert isinstance(await here.enter("cart-2", ticket), Admission)
    with pytest.raises(QueueTicketUsed):
        await here.enter("cart-2", ticket)


async def test_leaving_twice_gives_back_one_place(clock: Clock) -> None:
    shop = room(clock, limit=1)
    admitted = await shop.enter("cart-1", None)
    admitted.begin()
    await admitted.leave()
    await admitted.leave()
    assert shop.in_flight == 0


async def _ended(shop: WaitingRoom, clock: Clock, count: int, every: float) -> None:
    """`count` checkouts one after another, each taking `every` seconds."""
    for _ in range(count):
        admitted = await shop.enter("cart-1", None)
        clock.now += every
        await checked_out(admitted)


async def _last_in_line(shop: WaitingRoom, ahead: int) -> int:
    """The wait asked of a buyer with `ahead` numbers before its own."""
    await shop.enter("cart-1", None)
    for n in range(ahead):
        await queued(shop, f"cart-{n}")
    retry_after: int = (await queued(shop, "cart-last")).extensions["retry_after"]
    return retry_after


async def test_the_wait_it_asks_for_follows_how_fast_checkouts_end(clock: Clock) -> None:
    """More checkouts end in 30 s than the room keeps: the wait is what those kept show."""
    shop = room(clock, limit=1)
    await _ended(shop, clock, 300, every=0.01)  # 100 a second
    # 349 ahead at 100 a second: 3.49 s, asked as 3 (a holder a little early only waits).
    assert await _last_in_line(shop, 349) == 3


async def test_a_room_that_just_opened_reads_its_pace_from_its_first_checkouts(
    clock: Clock,
) -> None:
    shop = room(clock, limit=1)
    await _ended(shop, clock, 20, every=0.05)  # 20 a second, for one second so far
    assert await _last_in_line(shop, 60) == 3


async def test_a_sale_that_just_began_asks_for_the_wait_its_places_give(clock: Clock) -> None:
    """Ten places, an eighth of a second a checkout: eighty a second, though only five have
    ended yet. Read from those five alone, 300 ahead would be a minute's wait, and the holder
    would come back long after its number was called."""
    shop = room(clock, limit=10)
    running = [await shop.enter(f"cart-{n}", None) for n in range(10)]
    clock.now += 0.125
    for admitted in running[:5]:
        await checked_out(admitted)
    for n in range(5):
        await shop.enter(f"cart-again-{n}", None)
    for n in range(300):
        await queued(shop, f"cart-waiting-{n}")
    last = await queued(shop, "cart-last")
    # 300 ahead at eighty a second: 3.75 s, asked as 3.
    assert (position(last), last.extensions["retry_after"]) == (301, 3)


async def test_holders_far_back_look_again_within_half_a_minute_not_all_at_once(
    clock: Clock,
) -> None:
    shop = room(clock, limit=1)
    await _ended(shop, clock, 10, every=1.0)  # one a second
    await shop.enter("cart-1", None)
    waits = [(await queued(shop, f"cart-{n}")).extensions["retry_after"] for n in range(200)]

    # 40 s away and more: asked back within 30 s, in case the queue moves faster by then,
    # each at its own second of the last quarter, so they do not all come back together.
    far_back = waits[40:]
    assert all(22 <= wait <= 30 for wait in far_back)
    assert len(set(far_back)) > 1
    # Nearer, each is told its own wait.
    assert waits[:20] == sorted(waits[:20])


async def test_holders_are_called_two_seconds_of_checkouts_ahead(clock: Clock) -> None:
    """Two places, a tenth of a second a checkout: twenty checkouts a second, so forty
    holders are called at once, and whichever of them is back first takes a free place."""
    shop = room(clock, limit=2)
    await _ended(shop, clock, 5, every=0.1)
    running = [await shop.enter("cart-1", None), await shop.enter("cart-2", None)]
    tickets = [(await queued(shop, f"cart-{n}")).extensions["ticket"] for n in range(150)]
    await checked_out(running.pop())

    assert isinstance(await shop.enter("cart-39", tickets[39]), Admission)
    # Number 61 is not called yet (41 are: the first forty, and one for the place taken).
    assert position(await queued(shop, "cart-60", tickets[60])) > 1
    # A newcomer waits behind everyone.
    assert position(await queued(shop, "cart-new")) == 150
