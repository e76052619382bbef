"""The in-memory rate limiter: bursts up to the limit, then the steady rate, on a clock the
test moves by hand."""

from __future__ import annotations

from colonnade.web.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


async def test_a_client_gets_its_limit_then_waits_for_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    wants = [("login:address:10.0.0.1", 5, 60.0)]

    assert [await limiter.take(wants) for _ in range(5)] == [0, 0, 0, 0, 0]
    # 5 per minute: one token comes back every 12 seconds.
    assert await limiter.take(wants) == 12
    clock.seconds += 11
    assert await limiter.take(wants) == 1
    clock.seconds += 1
    assert await limiter.take(wants) == 0
    assert await limiter.take(wants) == 12


async def test_a_refused_request_uses_up_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    address = ("checkout:address:10.0.0.1", 3, 60.0)
    cart = ("checkout:account:cart-1", 1, 60.0)

    assert await limiter.take([address, cart]) == 0
    # The cart is spent, so the address keeps its tokens for other carts.
    assert await limiter.take([address, cart]) == 60
    assert await limiter.take([address, cart]) == 60
    assert await limiter.take([address, ("checkout:account:cart-2", 1, 60.0)]) == 0
    assert await limiter.take([address, ("checkout:account:cart-3", 1, 60.0)]) == 0
    assert await limiter.take([address, ("checkout:account:cart-4", 1, 60.0)]) == 20


async def test_clients_do_not_share_buckets_and_quiet_ones_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for client in range(100):
        assert await limiter.take([(f"login:address:{client}", 1, 60.0)]) == 0
    assert await limiter.take([("login:address:0", 1, 60.0)]) == 60
    clock.seconds += 61
    assert await limiter.take([("login:address:fresh", 1, 60.0)]) == 0
    assert len(limiter._buckets) == 1
