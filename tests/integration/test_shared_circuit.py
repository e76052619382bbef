"""The payment circuit breaker kept in Redis: failures seen by one process open it for every
process, after the cool-down exactly one trial goes across all of them, and its verdict holds
for all; while Redis is down each process falls back to a breaker of its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.shared_state import connect
from colonnade.modules.payments.adapters.shared_circuit import SharedCircuitBreaker
from colonnade.modules.payments.circuit import BreakerPolicy, CircuitState
from colonnade.modules.payments.domain import ProviderCircuitOpen, ProviderUnavailable
from colonnade.modules.payments.resilience import ResilientProvider
from tests.unit.test_payment_resilience import USD, ScriptedProcessor, no_answer

pytestmark = pytest.mark.redis

COOLDOWN = timedelta(seconds=30)
POLICY = BreakerPolicy(consecutive_failures=3, cooldown=COOLDOWN)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 28, 9, 0, tzinfo=UTC))


@pytest.fixture
def breakers(
    redis_clients: tuple[Redis, Redis], redis_prefix: str, clock: SettableClock
) -> tuple[SharedCircuitBreaker, SharedCircuitBreaker]:
    """The breakers of two processes of one shop."""
    one, other = (
        SharedCircuitBreaker(redis, POLICY, clock, prefix=redis_prefix, trial_lease=COOLDOWN)
        for redis in redis_clients
    )
    return one, other


def resilient(processor: ScriptedProcessor, breaker: SharedCircuitBreaker) -> ResilientProvider:
    return ResilientProvider(
        processor, breaker=breaker, timeout_seconds=5.0, retries=2, backoff_seconds=0.001
    )


async def test_failures_seen_by_one_process_open_the_breaker_in_the_other(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker],
) -> None:
    one, other = breakers
    failing = ScriptedProcessor(*[no_answer() for _ in range(3)])
    healthy = ScriptedProcessor()

    with pytest.raises(ProviderUnavailable):
        await resilient(failing, one).authorize("pay-1", USD, "tok_visa")  # three failures

    with pytest.raises(ProviderCircuitOpen) as open_:
        await resilient(healthy, other).authorize("pay-2", USD, "tok_visa")
    assert healthy.calls == []
    assert open_.value.retry_after == 30
    assert (one.state, other.state) == (CircuitState.OPEN, CircuitState.OPEN)


async def test_failures_count_together_across_processes(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker],
) -> None:
    one, other = breakers
    for breaker in (one, other, one):
        assert await breaker.allow()
        await breaker.failed()

    assert not await other.allow()
    assert other.state is CircuitState.OPEN


async def test_after_the_cooldown_exactly_one_trial_goes_across_processes(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker], clock: SettableClock
) -> None:
    one, other = breakers
    await _open(one)
    clock.advance(COOLDOWN)

    allowed = await asyncio.gather(*(breaker.allow() for breaker in (one, other) * 20))

    assert allowed.count(True) == 1
    trial = (one, other)[allowed.index(True) % 2]
    await trial.succeeded()
    assert await one.allow()
    assert await other.allow()
    assert (one.state, other.state) == (CircuitState.CLOSED, CircuitState.CLOSED)


async def test_a_failed_trial_opens_it_again_for_every_process(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker], clock: SettableClock
) -> None:
    one, other = breakers
    await _open(one)
    clock.advance(COOLDOWN)
    assert await other.allow()
    clock.advance(timedelta(seconds=5))
    await other.failed()

    assert not await one.allow()
    assert one.retry_after() == 30
    clock.advance(COOLDOWN)
    assert await one.allow()


async def test_an_abandoned_trial_lets_another_process_try(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker], clock: SettableClock
) -> None:
    one, other = breakers
    await _open(one)
    clock.advance(COOLDOWN)
    assert await one.allow()
    assert not await other.allow()

    await one.abandoned()

    assert await other.allow()
    assert not await one.allow()


async def test_a_late_failure_while_open_does_not_start_the_cooldown_again(
    breakers: tuple[SharedCircuitBreaker, SharedCircuitBreaker], clock: SettableClock
) -> None:
    one, other = breakers
    assert await other.allow()  # a slow call, still running while others fail
    await _open(one)
    clock.advance(timedelta(seconds=20))
    await other.failed()
    assert not await other.allow()
    assert other.retry_after() == 10


async def test_while_redis_is_down_each_process_has_a_breaker_of_its_own(
    clock: SettableClock,
) -> None:
    unreachable = connect("redis://127.0.0.1:1/0", timeout_seconds=0.5)
    try:
        breaker = SharedCircuitBreaker(
            unreachable, POLICY, clock, prefix="colonnade", trial_lease=COOLDOWN
        )
        await _open(breaker)
        assert breaker.state is CircuitState.OPEN
        assert not await breaker.allow()
        assert breaker.retry_after() == 30
    finally:
        await unreachable.aclose()


async def _open(breaker: SharedCircuitBreaker) -> None:
    for _ in range(3):
        assert await breaker.allow()
        await breaker.failed()
    assert breaker.state is CircuitState.OPEN
