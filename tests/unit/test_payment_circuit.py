"""The payment provider's circuit breaker, as pure rules over a clock moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from colonnade.kernel.clock import SettableClock
from colonnade.modules.payments.circuit import BreakerPolicy, CircuitBreaker, CircuitState

COOLDOWN = timedelta(seconds=30)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 28, 9, 0, tzinfo=UTC))


def breaker(clock: SettableClock, **policy: object) -> CircuitBreaker:
    settings: dict[str, object] = {"consecutive_failures": 3, "cooldown": COOLDOWN, **policy}
    return CircuitBreaker(BreakerPolicy(**settings), clock)  # type: ignore[arg-type]


def fail(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert circuit.allow()
        circuit.failed()


def test_a_closed_breaker_lets_every_call_through(clock: SettableClock) -> None:
    circuit = breaker(clock)
    assert circuit.state is CircuitState.CLOSED
    assert all(circuit.allow() for _ in range(100))


def test_it_opens_after_the_configured_failures_in_a_row(clock: SettableClock) -> None:
    circuit = breaker(clock)
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED
    fail(circuit, 1)
    assert circuit.state is CircuitState.OPEN
    assert not circuit.allow()


def test_an_answer_between_failures_starts_the_count_again(clock: SettableClock) -> None:
    circuit = breaker(clock)
    fail(circuit, 2)
    assert circuit.allow()
    circuit.succeeded()  # a declined card is an answer too: the provider works
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED


def test_a_high_failure_rate_over_the_window_opens_it_without_failures_in_a_row(
    clock: SettableClock,
) -> None:
    circuit = breaker(
        clock,
        consecutive_failures=100,
        failure_rate=0.5,
        minimum_calls=10,
        window=timedelta(seconds=60),
    )
    for _ in range(4):  # fail, answer, fail, answer ...: never two failures in a row
        fail(circuit, 1)
        assert circuit.allow()
        circuit.succeeded()
        clock.advance(timedelta(seconds=1))
    assert circuit.state is CircuitState.CLOSED  # 8 calls: too few to judge
    fail(circuit, 1)
    assert circuit.allow()
    circuit.succeeded()
    assert circuit.state is CircuitState.CLOSED  # 10 calls, the last one answered
    fail(circuit, 1)
    assert circuit.state is CircuitState.OPEN  # 6 of 11 failed


def test_failures_older_than_the_window_are_forgotten(clock: SettableClock) -> None:
    circuit = breaker(
        clock,
        consecutive_failures=100,
        failure_rate=0.5,
        minimum_calls=4,
        window=timedelta(seconds=60),
    )
    fail(circuit, 3)
    clock.advance(timedelta(seconds=61))
    for _ in range(2):
        assert circuit.allow()
        circuit.succeeded()
    fail(circuit, 1)  # counting the old ones, 4 of 6 calls would have failed
    assert circuit.state is CircuitState.CLOSED
    assert circuit.allow()
    circuit.succeeded()
    assert circuit.state is CircuitState.CLOSED


def test_an_open_breaker_waits_out_its_cooldown_then_lets_one_trial_through(
    clock: SettableClock,
) -> None:
    circuit = breaker(clock)
    fail(circuit, 3)
    assert circuit.retry_after() == 30
    clock.advance(COOLDOWN - timedelta(seconds=1))
    assert not circuit.allow()
    assert circuit.retry_after() == 1
    clock.advance(timedelta(seconds=1))
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.allow()  # the trial
    assert not circuit.allow()  # everyone else waits for its verdict
    assert circuit.state is CircuitState.HALF_OPEN


def test_a_successful_trial_closes_it(clock: SettableClock) -> None:
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(COOLDOWN)
    assert circuit.allow()
    circuit.succeeded()
    assert circuit.state is CircuitState.CLOSED
    fail(circuit, 2)  # the old failures do not count any more
    assert circuit.state is CircuitState.CLOSED


def test_a_failed_trial_opens_it_for_another_cooldown(clock: SettableClock) -> None:
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(COOLDOWN)
    assert circuit.allow()
    clock.advance(timedelta(seconds=5))
    circuit.failed()
    assert circuit.state is CircuitState.OPEN
    assert circuit.retry_after() == 30
    clock.advance(COOLDOWN - timedelta(seconds=1))
    assert not circuit.allow()
    clock.advance(timedelta(seconds=1))
    assert circuit.allow()


def test_an_abandoned_trial_lets_another_one_go(clock: SettableClock) -> None:
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(COOLDOWN)
    assert circuit.allow()
    circuit.abandoned()
    assert circuit.allow()
    assert not circuit.allow()


def test_a_late_failure_of_a_call_let_through_before_it_opened_changes_nothing(
    clock: SettableClock,
) -> None:
    circuit = breaker(clock)
    assert circuit.allow()  # a slow call, still running while others fail
    fail(circuit, 3)
    clock.advance(timedelta(seconds=20))
    circuit.failed()
    assert circuit.retry_after() == 10  # the cool-down did not start again


@pytest.mark.parametrize(
    "policy",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0},
        {"failure_rate": 1.5},
        {"minimum_calls": 0},
        {"cooldown": timedelta(0)},
        {"window": timedelta(seconds=-1)},
    ],
)
def test_a_policy_that_could_never_work_is_refused(policy: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"breaker|failure rate|window"):
        BreakerPolicy(**policy)  # type: ignore[arg-type]
