"""The rehearsal's Black Friday profile: its ramp and peak, the visitors the mix brings per
purchase, the flash sale's rush, and the faults' schedule written on the command line."""

from __future__ import annotations

import itertools

import pytest

from colonnade.rehearsal.profile import (
    DEFAULT_MIX,
    Fault,
    FlashSale,
    Mix,
    Profile,
    parse_fault,
    parse_seconds,
)


def black_friday(**changes: object) -> Profile:
    settings: dict[str, object] = {
        "seconds": 180.0,
        "baseline": 2.0,
        "peak_multiple": 10.0,
        "ramp_seconds": 60.0,
    }
    settings.update(changes)
    return Profile(**settings)  # type: ignore[arg-type]


def test_purchases_ramp_from_the_baseline_to_the_peak_then_hold() -> None:
    profile = black_friday()

    assert profile.purchases_per_second(0) == 2
    assert profile.purchases_per_second(30) == pytest.approx(11)
    assert profile.purchases_per_second(60) == 20
    assert profile.purchases_per_second(179) == 20


def test_visitors_arrive_at_the_purchase_rate_over_the_share_of_buyers() -> None:
    profile = black_friday(mix=Mix(browse=0.5, cart=0.3, buy=0.2))

    # The ramp's minute averages 11 purchases/s, the peak's two minutes 20/s.
    assert profile.visits_between(0, 60) == pytest.approx(11 * 60 / 0.2)
    assert profile.visits_between(60, 180) == pytest.approx(20 * 120 / 0.2)
    # Arrivals counted tick by tick add up to the whole, whatever the ticks.
    ticks = [i * 0.05 for i in range(3601)]
    counted = sum(profile.visits_between(a, b) for a, b in itertools.pairwise(ticks))
    assert counted == pytest.approx(profile.visits_between(0, 180))
    assert profile.visits_between(180, 300) == 0


def test_the_flash_sale_brings_its_buyers_evenly_over_its_seconds() -> None:
    profile = black_friday(flash=FlashSale("GRINDER", at=90, stock=100, buyers=500, seconds=10))

    assert profile.flash_buyers_between(0, 90) == 0
    assert profile.flash_buyers_between(90, 92) == pytest.approx(100)
    assert profile.flash_buyers_between(85, 120) == pytest.approx(500)
    assert profile.phase(95) == "flash sale"
    assert (profile.phase(30), profile.phase(120)) == ("ramp", "peak")
    assert profile.expected_purchases() == pytest.approx(11 * 60 + 20 * 120 + 500)


def test_held_faults_hold_over_their_window_and_struck_ones_come_in_order() -> None:
    slow = Fault("slow-provider", at=30, lasting=20)
    profile = black_friday(
        faults=(Fault("cut-database", at=150), slow, Fault("kill-worker", at=100))
    )

    assert profile.held_faults_at(29.9) == []
    assert profile.held_faults_at(30) == [slow]
    assert profile.held_faults_at(50) == []
    assert [f.kind for f in profile.struck_faults()] == ["kill-worker", "cut-database"]


@pytest.mark.parametrize(
    "changes",
    [
        {"baseline": 0},
        {"peak_multiple": 0.5},
        {"ramp_seconds": 200},
        {"flash": FlashSale("GRINDER", at=175, stock=10, buyers=50, seconds=10)},
        {"faults": (Fault("failing-provider", at=170, lasting=30),)},
    ],
)
def test_a_profile_that_does_not_fit_its_rehearsal_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        black_friday(**changes)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1:30", 90), ("0.5s", 0.5)],
)
def test_times_are_written_as_seconds_minutes_or_a_clock(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1:3x", "-5"])
def test_a_time_that_is_none_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_seconds(text)


def test_faults_are_written_kind_at_and_lasting() -> None:
    assert parse_fault("slow-provider@1:00+45s") == Fault("slow-provider", 60, 45)
    assert parse_fault("failing-provider@2m") == Fault("failing-provider", 120, 30)
    assert parse_fault("kill-worker@90") == Fault("kill-worker", 90)
    with pytest.raises(ValueError, match="strikes once"):
        parse_fault("cut-database@90+10")
    with pytest.raises(ValueError, match="is not a fault"):
        parse_fault("fire@90")


def test_the_shops_own_mix_comes_from_its_funnel_and_product_pages() -> None:
    # 1,000 product pages viewed, 200 carts started, 50 checkouts.
    mix = Mix.observed(carts=200, checkouts=50, product_views=1000)

    assert mix is not None
    assert (mix.browse, mix.cart, mix.buy) == pytest.approx((0.8, 0.15, 0.05))
    assert mix.source == "funnel and product pages"


@pytest.mark.parametrize("views", [0, 150])
def test_without_every_page_view_the_funnel_splits_the_carts_and_browsing_keeps_its_default(
    views: int,
) -> None:
    mix = Mix.observed(carts=200, checkouts=50, product_views=views)

    assert mix is not None
    assert mix.browse == DEFAULT_MIX.browse
    assert mix.buy / (mix.cart + mix.buy) == pytest.approx(0.25)


def test_a_shop_without_checkouts_has_no_mix_of_its_own() -> None:
    assert Mix.observed(carts=0, checkouts=0, product_views=500) is None
    assert Mix.observed(carts=10, checkouts=0, product_views=500) is None
