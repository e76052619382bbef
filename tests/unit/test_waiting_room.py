"""The waiting room's rules on a clock of the test's own: who is let in, who waits with which
ticket, in what order numbers are called, and which tickets are refused."""

from __future__ import annotations

import jwt
import pytest

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
    return WaitingRoom(limit, SECRET, ticket_seconds=600, call_seconds=10, clock=clock)


def queued(waiting_room: WaitingRoom, cart: str, ticket: str | None = None) -> CheckoutQueued:
    with pytest.raises(CheckoutQueued) as raised:
        waiting_room.enter(cart, ticket)
    return raised.value


def test_checkouts_beyond_the_limit_wait_with_numbered_tickets(clock: Clock) -> None:
    shop = room(clock)
    first, second = shop.enter("cart-1", None), shop.enter("cart-2", None)
    third = queued(shop, "cart-3")
    fourth = queued(shop, "cart-4")

    assert isinstance(first, Admission)
    assert isinstance(second, Admission)
    assert shop.in_flight == 2
    assert (third.status, third.code) == (503, "checkout_queued")
    assert [third.extensions["position"], fourth.extensions["position"]] == [1, 2]
    assert third.extensions["retry_after"] >= 1
    assert third.extensions["ticket"] != fourth.extensions["ticket"]


def test_numbers_are_called_in_order_and_no_newcomer_skips_the_queue(clock: Clock) -> None:
    shop = room(clock)
    running = [shop.enter("cart-1", None), shop.enter("cart-2", None)]
    third = queued(shop, "cart-3").extensions["ticket"]
    fourth = queued(shop, "cart-4").extensions["ticket"]

    running.pop().leave()
    # One place free, kept for number 1: number 2 waits, and so does a newcomer.
    assert queued(shop, "cart-4", fourth).extensions["position"] == 1
    assert queued(shop, "cart-5").extensions["position"] == 2
    running.append(shop.enter("cart-3", third))
    running.pop().leave()
    running.append(shop.enter("cart-4", fourth))
    assert shop.in_flight == 2


def test_a_called_number_whose_holder_is_gone_does_not_stall_the_queue(clock: Clock) -> None:
    shop = room(clock, limit=1)
    running = shop.enter("cart-1", None)
    queued(shop, "cart-2")  # its holder never comes back
    third = queued(shop, "cart-3").extensions["ticket"]

    running.leave()
    assert queued(shop, "cart-3", third).extensions["position"] == 1
    clock.now += 11  # number 1's place lapses; number 2 is called
    assert isinstance(shop.enter("cart-3", third), Admission)


def test_a_ticket_lets_its_holder_in_once_for_its_cart_until_it_ends(clock: Clock) -> None:
    shop = room(clock, limit=1)
    running = shop.enter("cart-1", None)
    ticket = queued(shop, "cart-2").extensions["ticket"]
    expiring = queued(shop, "cart-3").extensions["ticket"]
    running.leave()

    with pytest.raises(QueueTicketInvalid):
        shop.enter("cart-9", ticket)
    admitted = shop.enter("cart-2", ticket)
    admitted.leave()
    with pytest.raises(QueueTicketUsed):
        shop.enter("cart-2", ticket)
    clock.now += 601
    with pytest.raises(QueueTicketExpired):
        shop.enter("cart-3", expiring)


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
def test_a_forged_ticket_is_refused(clock: Clock, forged: str) -> None:
    shop = room(clock, limit=1)
    shop.enter("cart-1", None)

    with pytest.raises(QueueTicketInvalid) as refused:
        shop.enter("cart-2", forged)
    assert (refused.value.status, refused.value.code) == (422, "queue_ticket_invalid")


def test_a_ticket_of_another_process_waits_only_for_a_free_place(clock: Clock) -> None:
    elsewhere, here = room(clock, limit=1), room(clock, limit=1)
    elsewhere.enter("cart-1", None)
    ticket = queued(elsewhere, "cart-2").extensions["ticket"]

    running = here.enter("cart-3", None)
    assert queued(here, "cart-2", ticket).extensions["position"] == 1
    running.leave()
    assert isinstance(here.enter("cart-2", ticket), Admission)
    with pytest.raises(QueueTicketUsed):
        here.enter("cart-2", ticket)


def test_leaving_twice_gives_back_one_place(clock: Clock) -> None:
    shop = room(clock, limit=1)
    admitted = shop.enter("cart-1", None)
    admitted.leave()
    admitted.leave()
    assert shop.in_flight == 0


def test_the_wait_it_asks_for_follows_how_fast_checkouts_end(clock: Clock) -> None:
    """More checkouts end in 30 s than the room keeps: the wait is what those kept show."""
    shop = room(clock, limit=1)
    for _ in range(300):  # one every 10 ms: 100 a second
        shop.enter("cart-1", None).leave()
        clock.now += 0.01
    shop.enter("cart-1", None)
    for n in range(199):
        queued(shop, f"cart-{n}")
    # 199 ahead at 100 a second: 2 s (the kept 200 spread over 30 s would say the most, 30 s).
    assert queued(shop, "cart-last").extensions["retry_after"] == 2
