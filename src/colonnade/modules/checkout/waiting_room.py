"""The waiting room: at most `limit` checkouts run at once; a buyer who comes when they all
run, or while others wait, gets a numbered ticket and comes back with it, and tickets are
called in their numbers' order. Nothing is held for a waiting buyer: the checkout starts,
stock and all, only once the buyer is let in.

A ticket is a signed token (HS256, under a key of its own derived from the shop's secret)
naming its number, its cart, its queue and its end. It cannot be forged, is good for its cart
only, ends after `ticket_seconds`, and lets its holder in once.

Numbers are called ahead of the places: while fewer than `calls` called holders are awaited
(as many as the limit lets in over two seconds, by how long checkouts take, and never fewer
than the limit), the next number is called, and a called holder is let in whenever fewer
than `limit` checkouts run. Holders poll, and come back when they think their turn is near;
calling only as many as there are places would leave places idle until those few came back,
so the queue would move at the pace of their polling. No more than `limit` checkouts ever
run. Numbers are called strictly in order; among the called, the first back when a place is
free goes in, so a holder may be passed by one called after it, by about two seconds of
checkouts at most (bench.waiting_room measures how far). A called holder who does not come
back within `call_seconds` is no longer awaited (the next number is called) but keeps its
right to enter, so an abandoned ticket never stalls the queue. A newcomer comes straight in
only when nobody is queued or awaited.

The limit is the shop's (`FixedLimit`) or learned from checkout times (`LearnedLimit`). The
queue is this process's own (`OwnQueue`), or, with Redis, one queue for every worker and
replica of the shop (`SharedQueue`, in shared_waiting_room): the places are then the sum of
the processes' limits, and numbers are called in order whichever process a holder comes back
to. While Redis is down each process queues on its own, and a ticket of another queue (of
Redis before its outage, of another process, of a Redis that lost its keys) is let in as soon
as a place is free.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jwt

from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput
from colonnade.kernel.metrics import (
    CHECKOUT_QUEUE,
    CHECKOUT_QUEUE_IN_FLIGHT,
    CHECKOUT_QUEUE_LIMIT,
    CHECKOUT_QUEUE_WAIT,
    CHECKOUT_QUEUE_WAITING,
)
from colonnade.kernel.shared_state import UNREACHABLE, Outage
from colonnade.modules.checkout.admission_limit import FixedLimit, LearnedLimit

_AUDIENCE = "colonnade-waiting-room"


class CheckoutQueued(ColonnadeError):
    status = 503
    title = "Checkout queued"
    code = "checkout_queued"

    def __init__(self, ticket: str, position: int, retry_after: int) -> None:
        super().__init__(
            f"checkout is at capacity; you are number {position} in the queue. Repeat the same"
            f" request with the header Queue-Ticket: <ticket> in {retry_after} s",
            ticket=ticket,
            position=position,
            retry_after=retry_after,
        )


class QueueTicketInvalid(InvalidInput):
    code = "queue_ticket_invalid"

    def __init__(self) -> None:
        super().__init__(
            "the Queue-Ticket is not one this shop gave for this cart; repeat the request"
            " without it to join the queue"
        )


class QueueTicketExpired(InvalidInput):
    code = "queue_ticket_expired"

    def __init__(self) -> None:
        super().__init__(
            "the Queue-Ticket has expired; repeat the request without it to join the queue again"
        )


class QueueTicketUsed(Conflict):
    code = "queue_ticket_used"

    def __init__(self) -> None:
        super().__init__(
            "the Queue-Ticket has let its holder in already; a retry of that checkout with its"
            " Idempotency-Key needs no ticket unless the queue is full"
        )


@dataclass(frozen=True)
class Ticket:
    number: int
    cart_id: str
    expires_at: float
    id: str
    # The queue that gave it: a process's own, or the shared one.
    room: str
    issued_at: float


@dataclass(frozen=True)
class Admitted:
    """A place taken in a queue; `key` names it there."""

    key: str
    waiting: int


@dataclass(frozen=True)
class Waits:
    """Not let in yet: the holder's number (a new one for a buyer who came without a
    ticket), how many numbers are called before it, and how fast the queue moves."""

    number: int
    ahead: int
    # Checkouts ended per second lately.
    pace: float
    waiting: int
    room: str


@dataclass(frozen=True)
class Places:
    """A process's share of the queue: its limit (checkouts at once), and how many called
    holders it lets the queue await (`calls`, at least the limit)."""

    limit: int
    calls: int


class Queue(Protocol):
    async def arrive(self, places: Places, now: float) -> Admitted | Waits:
        """A buyer without a ticket."""
        ...

    async def come_back(self, ticket: Ticket, places: Places, now: float) -> Admitted | Waits:
        """A ticket holder (raises QueueTicketUsed for a ticket that let its holder in)."""
        ...

    async def leave(self, place: Admitted, places: Places, now: float) -> None: ...

    async def unspend(self, ticket: Ticket) -> None:
        """Let `ticket`, which let its holder in, let it in again."""
        ...


def pace_of(ends: deque[float], now: float) -> float:
    """Checkouts ended per second lately: those of the last 30 s among `ends` (oldest first;
    older ones are dropped from it), over the time they cover (at least 1 s). Over a fixed
    30 s, a room that opened a moment ago, or one whose kept ends cover less than 30 s, would
    look slower than it is."""
    while ends and ends[0] <= now - 30:
        ends.popleft()
    if not ends:
        return 0.0
    return len(ends) / max(now - ends[0], 1.0)


class OwnQueue:
    """This process's queue: its numbers, and the places of its limit."""

    ENDS_KEPT = 200

    def __init__(self, *, call_seconds: float) -> None:
        self.room = uuid.uuid4().hex
        self._call_seconds = call_seconds
        self._in_flight = 0
        # The last number given, and the last called.
        self._issued = 0
        self._called = 0
        # Called numbers whose holders have not come back yet, with when their call lapses.
        self._keeping: dict[int, float] = {}
        self._ended: deque[float] = deque(maxlen=self.ENDS_KEPT)

    async def arrive(self, places: Places, now: float) -> Admitted | Waits:
        self._call(places, now)
        if self._called == self._issued and self._in_flight + len(self._keeping) < places.limit:
            return self._admit()
        self._issued += 1
        return self._waits(self._issued, now)

    async def come_back(self, ticket: Ticket, places: Places, now: float) -> Admitted | Waits:
        self._call(places, now)
        ours = ticket.room == self.room
        if self._in_flight < places.limit and (not ours or ticket.number <= self._called):
            if ours:
                self._keeping.pop(ticket.number, None)
            return self._admit()
        return self._waits(ticket.number, now, ours=ours)

    async def leave(self, place: Admitted, places: Places, now: float) -> None:
        self._in_flight -= 1
        self._ended.append(now)
        self._call(places, now)

    async def unspend(self, ticket: Ticket) -> None:
        """The room keeps this process's record of spent tickets."""

    def _call(self, places: Places, now: float) -> None:
        """Call numbers while fewer than `places.calls` called holders are awaited."""
        # Calls lapse in the order they were made, which is the dict's.
        while self._keeping:
            number, until = next(iter(self._keeping.items()))
            if until > now:
                break
            del self._keeping[number]
        while self._called < self._issued and len(self._keeping) < places.calls:
            self._called += 1
            self._keeping[self._called] = now + self._call_seconds

    def _admit(self) -> Admitted:
        self._in_flight += 1
        return Admitted("", self._issued - self._called)

    def _waits(self, number: int, now: float, *, ours: bool = True) -> Waits:
        # A number not called yet waits for those before it and the called ones awaited; a
        # called one, for a place, with the others awaited (half of them before it, likely).
        called = not ours or number <= self._called
        awaited = len(self._keeping)
        ahead = awaited // 2 if called else number - self._called - 1 + awaited
        pace = pace_of(self._ended, now)
        return Waits(number, ahead, pace, self._issued - self._called, self.room)


class Admission:
    """A checkout let in: its place is given back when it ends, whatever the outcome. Until
    `begin` its ticket is not spent: one refused before its checkout began (a malformed
    request, say) is given its ticket back, to come back with it once the request is right."""

    def __init__(
        self,
        room: WaitingRoom,
        queue: Queue,
        place: Admitted,
        ticket: Ticket | None,
        timer: Callable[[], float],
    ) -> None:
        self._room = room
        self._queue = queue
        self._place = place
        self._ticket = ticket
        self._timer = timer
        self._entered = timer()
        self._begun = False
        self._left = False

    def begin(self) -> None:
        self._begun = True

    async def leave(self) -> None:
        if not self._left:
            self._left = True
            seconds = self._timer() - self._entered if self._begun else None
            unspent = None if self._begun else self._ticket
            await self._room._leave(self._queue, self._place, seconds, unspent)


class WaitingRoom:
    MOST_WAIT_SECONDS = 30
    # Holders are called this many seconds of checkouts ahead, and each checkout's time moves
    # the average of them by this much.
    CALL_AHEAD_SECONDS = 2.0
    DURATION_WEIGHT = 0.05

    def __init__(
        self,
        limit: FixedLimit | LearnedLimit,
        secret: str,
        *,
        ticket_seconds: float = 900,
        call_seconds: float = 45,
        shared: Queue | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._key = hmac.new(secret.encode(), b"colonnade queue tickets", hashlib.sha256).digest()
        self._ticket_seconds = ticket_seconds
        self._clock = clock
        self._timer = timer
        self._own = OwnQueue(call_seconds=call_seconds)
        self._shared = shared
        self._outage = Outage("waiting_room")
        self._in_flight = 0
        # How long a checkout takes, on average lately (None until one ended).
        self._duration: float | None = None
        # Tickets that let their holders in here (forgotten once they end), and their ends,
        # soonest first: a checkout looks at the ended ones only, not at every ticket used.
        # The shared queue keeps its own record; this one also refuses a replay while Redis
        # is down.
        self._used: set[str] = set()
        self._used_until: list[tuple[float, str]] = []
        CHECKOUT_QUEUE_LIMIT.set(limit.value)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def enter(self, cart_id: str, presented: str | None) -> Admission:
        """Let a checkout of `cart_id` in, or raise CheckoutQueued with its ticket (the one
        presented, or a new one at the end of the queue)."""
        now = self._clock()
        self._forget_used(now)
        ticket = None
        if presented is not None:
            try:
                ticket = self._read(presented, cart_id, now)
            except ColonnadeError:
                CHECKOUT_QUEUE.labels("refused").inc()
                raise
        queue, answer = await self._ask(ticket, now)
        CHECKOUT_QUEUE_WAITING.set(answer.waiting)
        if isinstance(answer, Waits):
            if ticket is None or presented is None:
                ticket = Ticket(
                    answer.number,
                    cart_id,
                    now + self._ticket_seconds,
                    uuid.uuid4().hex,
                    answer.room,
                    now,
                )
                presented = self._sign(ticket)
                CHECKOUT_QUEUE.labels("ticketed").inc()
            else:
                # The holder keeps the ticket it has: nothing on it changes while it waits.
                CHECKOUT_QUEUE.labels("held").inc()
            raise CheckoutQueued(presented, answer.ahead + 1, self._wait(answer.ahead, answer.pace))
        if ticket is not None:
            self._used.add(ticket.id)
            heapq.heappush(self._used_until, (ticket.expires_at, ticket.id))
            CHECKOUT_QUEUE.labels("admitted").inc()
            CHECKOUT_QUEUE_WAIT.observe(max(now - ticket.issued_at, 0.0))
        self._in_flight += 1
        CHECKOUT_QUEUE_IN_FLIGHT.set(self._in_flight)
        return Admission(self, queue, answer, ticket, self._timer)

    async def _ask(self, ticket: Ticket | None, now: float) -> tuple[Queue, Admitted | Waits]:
        places = self._places()
        if self._shared is not None and not self._outage.skipping():
            try:
                if ticket is None:
                    answer = await self._shared.arrive(places, now)
                else:
                    answer = await self._shared.come_back(ticket, places, now)
            except UNREACHABLE as error:
                self._outage.failed(error)
            except QueueTicketUsed:
                CHECKOUT_QUEUE.labels("refused").inc()
                raise
            else:
                self._outage.answered()
                return self._shared, answer
        if ticket is None:
            return self._own, await self._own.arrive(places, now)
        return self._own, await self._own.come_back(ticket, places, now)

    def _places(self) -> Places:
        """The limit, and as many calls as holders the limit lets in over CALL_AHEAD_SECONDS
        (Little's law: the limit over how long a checkout takes)."""
        limit = self._limit.value
        if self._duration is None:
            return Places(limit, limit)
        served = limit * self.CALL_AHEAD_SECONDS / max(self._duration, 0.001)
        return Places(limit, max(limit, math.ceil(served)))

    async def _leave(
        self, queue: Queue, place: Admitted, seconds: float | None, unspent: Ticket | None
    ) -> None:
        """Give a place back; `seconds` the checkout took, None if none began (it says
        nothing of how long checkouts take), and the ticket to give back then."""
        if seconds is not None:
            self._limit.ended(seconds, self._in_flight)
            self._duration = (
                seconds
                if self._duration is None
                else self._duration + (seconds - self._duration) * self.DURATION_WEIGHT
            )
        self._in_flight -= 1
        CHECKOUT_QUEUE_IN_FLIGHT.set(self._in_flight)
        CHECKOUT_QUEUE_LIMIT.set(self._limit.value)
        if unspent is not None:
            self._used.discard(unspent.id)
        try:
            await queue.leave(place, self._places(), self._clock())
            if unspent is not None:
                await queue.unspend(unspent)
        except UNREACHABLE as error:
            # The shared place's lease ends on its own.
            self._outage.failed(error)

    def _forget_used(self, now: float) -> None:
        while self._used_until and self._used_until[0][0] <= now:
            self._used.discard(heapq.heappop(self._used_until)[1])

    def _wait(self, ahead: int, measured: float) -> int:
        """Whole seconds until a place is likely free for the holder: those ahead at the pace
        the queue moves, rounded down, so a holder comes a little early rather than late. At
        least 1 s; at most 30 s, so a holder far back looks again while the pace may change,
        and asks no more than twice a minute: each answer costs the shop's processes the
        work of a request, and thousands of holders asking every few seconds would take the
        time checkouts need.

        The pace is the one measured, or, when faster, what this process's places let
        through at how long checkouts take (Little's law): the measured one lags while the
        queue speeds up (in a sale's first seconds it has seen a few checkouts end), and a
        holder told too long a wait comes back after its number was called, so later numbers
        go in before it and its call stands idle meanwhile."""
        expected = 0.0 if self._duration is None else self._limit.value / max(self._duration, 0.001)
        pace = max(measured, expected)
        if ahead == 0 or pace == 0:
            return 1
        wait = math.floor(ahead / pace)
        if wait < self.MOST_WAIT_SECONDS:
            return max(1, wait)
        # Every holder far back would be told the same 30 s, and those who came in the same
        # second would all come back in one second: spread them over the last quarter.
        least = self.MOST_WAIT_SECONDS * 3 // 4
        return random.randint(least, self.MOST_WAIT_SECONDS)  # noqa: S311 - spreads polls only

    # --- tickets ---------------------------------------------------------------------------

    def _sign(self, ticket: Ticket) -> str:
        claims = {
            "n": ticket.number,
            "cart": ticket.cart_id,
            "exp": ticket.expires_at,
            "jti": ticket.id,
            "room": ticket.room,
            "iat": ticket.issued_at,
            "aud": _AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def _read(self, presented: str, cart_id: str, now: float) -> Ticket:
        try:
            claims = jwt.decode(
                presented,
                self._key,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                # Its end is judged by this process's clock (the shop's clocks agree).
                options={
                    "require": ["n", "cart", "exp", "jti", "room", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise QueueTicketInvalid() from None
        if claims["cart"] != cart_id or not isinstance(claims["n"], int):
            raise QueueTicketInvalid()
        if float(claims["exp"]) <= now:
            raise QueueTicketExpired()
        if claims["jti"] in self._used:
            raise QueueTicketUsed()
        return Ticket(
            claims["n"],
            cart_id,
            float(claims["exp"]),
            str(claims["jti"]),
            str(claims["room"]),
            float(claims["iat"]),
        )
