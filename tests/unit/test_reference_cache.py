"""The short-lived map behind markets and titles: it forgets by age, by size and on demand."""

from __future__ import annotations

from colonnade.kernel.cache import Recent


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_it_is_too_old() -> None:
    ticks = Ticks()
    kept: Recent[str, int] = Recent(5.0, now=ticks)
    kept.put("US", 1)
    ticks.now += 4.9
    assert kept.get("US") == 1
    ticks.now += 0.1
    assert kept.get("US") is None


def test_the_oldest_entries_go_first_when_it_is_full() -> None:
    kept: Recent[str, int] = Recent(60.0, size=2, now=Ticks())
    kept.put("a", 1)
    kept.put("b", 2)
    kept.put("a", 3)  # written again: now the newest
    kept.put("c", 4)
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (3, None, 4)


def test_forgetting_drops_everything_and_zero_seconds_keeps_nothing() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    kept.put("a", 1)
    kept.forget()
    assert kept.get("a") is None
    off: Recent[str, int] = Recent(0.0, now=Ticks())
    off.put("a", 1)
    assert off.get("a") is None
