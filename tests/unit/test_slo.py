"""The SLO alerts fire only while both of their windows burn the error budget too fast."""

from __future__ import annotations

import pytest

from colonnade.ops.slo import (
    BURN_RULES,
    HOUR,
    MINUTE,
    OBJECTIVES,
    Events,
    alert_name,
    burn_rate,
    evaluate,
)

AVAILABILITY = next(o for o in OBJECTIVES if o.name == "availability")
FAST = next(r for r in BURN_RULES if r.speed == "fast")


def failing(share: float, total: float = 10_000) -> Events:
    return Events(good=total * (1 - share), total=total)


def test_the_rules_are_the_workbooks_two_paging_speeds_and_a_ticket() -> None:
    rules = {(r.burn_rate, r.long_window, r.short_window, r.severity) for r in BURN_RULES}

    assert rules == {
        (14.4, 1 * HOUR, 5 * MINUTE, "page"),
        (6.0, 6 * HOUR, 30 * MINUTE, "page"),
        (1.0, 72 * HOUR, 6 * HOUR, "ticket"),
    }


def test_burn_rate_is_the_error_ratio_over_the_budget() -> None:
    # 99.9 %: the budget is 0.1 % of requests; 1 % failing spends it ten times too fast.
    assert burn_rate(AVAILABILITY, failing(0.01)) == pytest.approx(10)
    assert burn_rate(AVAILABILITY, failing(0.001)) == pytest.approx(1)
    assert burn_rate(AVAILABILITY, failing(0.0)) == 0


def test_no_traffic_burns_no_budget() -> None:
    assert burn_rate(AVAILABILITY, Events(0, 0)) == 0


def test_an_alert_fires_when_both_windows_burn_faster_than_its_rate() -> None:
    state = evaluate(AVAILABILITY, FAST, long=failing(0.02), short=failing(0.05))

    assert state.firing
    assert state.alert == "ColonnadeAvailabilityFastBurn"
    assert state.severity == "page"
    assert state.long_burn_rate == pytest.approx(20)


@pytest.mark.parametrize(
    ("long", "short"),
    [
        # A burst that is over: the last five minutes are clean.
        (failing(0.02), failing(0.0)),
        # A burst that just began: too small yet over the hour to be worth waking anyone.
        (failing(0.01), failing(0.5)),
    ],
)
def test_one_window_burning_alone_does_not_fire(long: Events, short: Events) -> None:
    assert not evaluate(AVAILABILITY, FAST, long=long, short=short).firing


def test_an_alert_recovers_once_the_short_window_is_clean_again() -> None:
    during = evaluate(AVAILABILITY, FAST, long=failing(0.03), short=failing(0.03))
    after = evaluate(AVAILABILITY, FAST, long=failing(0.03), short=failing(0.0001))

    assert during.firing
    assert not after.firing


def test_every_alert_has_its_own_name() -> None:
    names = [alert_name(o, r) for o in OBJECTIVES for r in BURN_RULES]

    assert len(set(names)) == len(OBJECTIVES) * len(BURN_RULES)
    assert "ColonnadeCheckoutLatencySlowBurn" in names
