"""The learned checkout limit, on a clock of the test's own: it grows while checkouts stay
quick and the limit is what stops them, backs off when they slow down or the latency
objective breaks, and, in front of a shop that slows down past its capacity, settles where
checkouts still end within the objective."""

from __future__ import annotations

import pytest

from colonnade.modules.checkout.admission_limit import FixedLimit, LearnedLimit

TARGET = 0.8


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def learned(clock: Clock, initial: int = 20) -> LearnedLimit:
    return LearnedLimit(target_seconds=TARGET, initial=initial, clock=clock)


def window(limit: LearnedLimit, clock: Clock, seconds: float, in_flight: int) -> None:
    """One second of twenty checkouts, each `seconds` long, with `in_flight` at once."""
    for _ in range(20):
        limit.ended(seconds, in_flight)
    clock.now += 1.0
    limit.ended(seconds, in_flight)


def test_it_grows_while_checkouts_stay_quick_at_the_limit() -> None:
    clock = Clock()
    limit = learned(clock)
    for _ in range(10):
        window(limit, clock, 0.1, in_flight=limit.value)
    assert limit.value > 25


def test_it_does_not_grow_past_what_is_used() -> None:
    clock = Clock()
    limit = learned(clock)
    for _ in range(10):
        window(limit, clock, 0.1, in_flight=5)
    assert limit.value == 20


def test_a_broken_objective_cuts_it_by_a_fifth_at_once() -> None:
    clock = Clock()
    limit = learned(clock, initial=50)
    window(limit, clock, 0.1, in_flight=50)
    before = limit.value
    window(limit, clock, TARGET + 0.2, in_flight=before)
    assert limit.value == pytest.approx(before * 0.8, abs=1)


def test_a_slowness_that_cuts_do_not_cure_does_not_starve_checkouts() -> None:
    """Every checkout takes 2 s whatever the limit (the process is busy with other work):
    one cut, then the limit holds."""
    clock = Clock()
    limit = learned(clock, initial=50)
    window(limit, clock, 0.1, in_flight=50)
    before = limit.value
    for _ in range(10):
        window(limit, clock, 2.0, in_flight=limit.value)
    assert limit.value == pytest.approx(before * 0.8, abs=1)


def test_checkouts_slowing_down_within_the_objective_shrink_it() -> None:
    clock = Clock()
    limit = learned(clock, initial=100)
    for _ in range(5):
        window(limit, clock, 0.05, in_flight=limit.value)
    grown = limit.value
    for _ in range(10):  # six times slower, still within the objective
        window(limit, clock, 0.3, in_flight=limit.value)
    assert limit.value < grown


def test_in_front_of_a_shop_past_its_capacity_it_settles_within_the_objective() -> None:
    """A shop that runs 16 checkouts in 0.1 s each; more at once queue inside it, so each
    takes 0.1 s * in flight / 16. Far more buyers than places: the limit is always full."""
    clock = Clock()
    limit = learned(clock, initial=4)
    seen = []
    for _ in range(300):
        running = limit.value
        window(limit, clock, 0.1 * max(1.0, running / 16), in_flight=running)
        seen.append(limit.value)
    settled = seen[-100:]
    # Up to the target, 0.1 s * limit / 16 ≤ 0.8 s: 128 at once. It passes that by a window's
    # growth before the cut, and stays within the objective's own bound, 1 s (160 at once).
    assert 128 < max(settled) < 140
    # And not starved: it uses well over the shop's own 16.
    assert min(settled) >= 32


def test_a_fixed_limit_is_what_was_set() -> None:
    limit = FixedLimit(3)
    limit.ended(5.0, 3)
    assert limit.value == 3
    with pytest.raises(ValueError, match="at least one checkout"):
        FixedLimit(0)
