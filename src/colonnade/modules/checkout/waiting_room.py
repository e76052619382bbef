"""The waiting room: at most `limit` checkouts run at once in this process; a buyer who comes
when they all run, or while others wait, gets a numbered ticket and comes back with it, and
tickets are called in their numbers' order. Nothing is held for a waiting buyer: the checkout
starts, stock and all, only once the buyer is let in.

A ticket is a signed token (HS256, under a key of its own derived from the shop's secret)
naming its number, its cart and its end. It cannot be forged, is good for its cart only,
ends after `ticket_seconds`, and lets its holder in once. A number is called when a place is
free; a called number whose holder does not come back within `call_seconds` keeps its right
to enter but no longer keeps a place free, so an abandoned ticket never stalls the queue.

Admission is per process (each worker, each replica its own room and limit): the order is
first come, first served within a process. A ticket another process gave (a retry that the
edge sent elsewhere, or a room started again) is let in as soon as a place is free here.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput
from colonnade.kernel.metrics import CHECKOUT_QUEUE, CHECKOUT_QUEUE_WAIT, CHECKOUT_QUEUE_WAITING

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
    # The room (process) that gave it.
    room: str
    issued_at: float


class Admission:
    """A checkout let in: its place is given back when it ends, whatever the outcome."""

    def __init__(self, room: WaitingRoom) -> None:
        self._room = room
        self._left = False

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._room._leave()


class WaitingRoom:
    def __init__(
        self,
        limit: int,
        secret: str,
        *,
        ticket_seconds: float = 900,
        call_seconds: float = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("a waiting room lets at least one checkout in")
        self._limit = limit
        self._key = hmac.new(secret.encode(), b"colonnade queue tickets", hashlib.sha256).digest()
        self._ticket_seconds = ticket_seconds
        self._call_seconds = call_seconds
        self._clock = clock
        self._room = uuid.uuid4().hex
        self._in_flight = 0
        # The last number given, and the last called.
        self._issued = 0
        self._called = 0
        # Called numbers whose holders have not come back yet, with when their place lapses.
        self._keeping: dict[int, float] = {}
        # Tickets that let their holders in (forgotten once they end), and their ends, soonest
        # first: a checkout looks at the ended ones only, not at every ticket used.
        self._used: set[str] = set()
        self._used_until: list[tuple[float, str]] = []
        # When recent checkouts ended: how fast the queue moves.
        self._ended: deque[float] = deque(maxlen=200)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Numbers given and not yet called."""
        return self._issued - self._called

    def enter(self, cart_id: str, presented: str | None) -> Admission:
        """Let a checkout of `cart_id` in, or raise CheckoutQueued with its ticket (the one
        presented, or a new one at the end of the queue)."""
        now = self._clock()
        self._lapse(now)
        self._call(now)
        if presented is None:
            if self._called == self._issued and self._free() > 0:
                return self._admit()
            ticket = self._issue(cart_id, now)
            raise self._queued(ticket, now, ahead=ticket.number - self._called - 1)
        try:
            ticket = self._read(presented, cart_id, now)
        except ColonnadeError:
            CHECKOUT_QUEUE.labels("refused").inc()
            raise
        if ticket.room != self._room:
            if self._free() > 0:
                return self._admit_holder(ticket)
            raise self._queued(ticket, now, ahead=self.waiting)
        if ticket.number <= self._called and self._in_flight < self._limit:
            self._keeping.pop(ticket.number, None)
            return self._admit_holder(ticket)
        raise self._queued(ticket, now, ahead=ticket.number - self._called - 1)

    # --- the queue -------------------------------------------------------------------------

    def _free(self) -> int:
        """Places neither taken nor kept for a called number."""
        return self._limit - self._in_flight - len(self._keeping)

    def _call(self, now: float) -> None:
        while self._called < self._issued and self._free() > 0:
            self._called += 1
            self._keeping[self._called] = now + self._call_seconds
        CHECKOUT_QUEUE_WAITING.set(self.waiting)

    def _lapse(self, now: float) -> None:
        for number, until in list(self._keeping.items()):
            if until <= now:
                del self._keeping[number]
        while self._used_until and self._used_until[0][0] <= now:
            self._used.discard(heapq.heappop(self._used_until)[1])

    def _admit(self) -> Admission:
        self._in_flight += 1
        return Admission(self)

    def _admit_holder(self, ticket: Ticket) -> Admission:
        self._used.add(ticket.id)
        heapq.heappush(self._used_until, (ticket.expires_at, ticket.id))
        CHECKOUT_QUEUE.labels("admitted").inc()
        CHECKOUT_QUEUE_WAIT.observe(max(self._clock() - ticket.issued_at, 0.0))
        return self._admit()

    def _leave(self) -> None:
        self._in_flight -= 1
        now = self._clock()
        self._ended.append(now)
        self._call(now)

    def _queued(self, ticket: Ticket, now: float, *, ahead: int) -> CheckoutQueued:
        """The answer to a holder who waits; `ahead`: numbers to be called before this
        one's turn comes (0 when it is next, or called and waiting for a place)."""
        ahead = max(ahead, 0)
        return CheckoutQueued(self._sign(ticket), ahead + 1, self._wait(ahead, now))

    def _wait(self, ahead: int, now: float) -> int:
        """Whole seconds until the number is likely called: those ahead at the rate recent
        checkouts ended (at least 1 s, at most 30 s, so a holder looks again soon)."""
        recent = [t for t in self._ended if t > now - 30]
        # The ends kept cover the last 30 s, or less when more ended than are kept.
        full = len(self._ended) == self._ended.maxlen and recent[:1] == [self._ended[0]]
        span = max(now - recent[0], 0.001) if full else 30.0
        rate = len(recent) / span
        if ahead == 0 or rate == 0:
            return 1
        return max(1, min(30, math.ceil(ahead / rate)))

    # --- tickets ---------------------------------------------------------------------------

    def _issue(self, cart_id: str, now: float) -> Ticket:
        self._issued += 1
        CHECKOUT_QUEUE.labels("ticketed").inc()
        CHECKOUT_QUEUE_WAITING.set(self.waiting)
        return Ticket(
            self._issued, cart_id, now + self._ticket_seconds, uuid.uuid4().hex, self._room, now
        )

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
                # Its end is judged by this room's clock, the one that gave it.
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
