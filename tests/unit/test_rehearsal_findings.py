"""What a rehearsal's report says, worked out from its timeline: SLOs held or broken and
when, the highest rate held within them, where saturation began, and the summary's counts
(purchases by the shoppers and by the shop, orders lost, units oversold)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from colonnade.rehearsal import findings
from colonnade.rehearsal.findings import Broken, Objective, Point
from colonnade.rehearsal.load import Tally
from colonnade.rehearsal.profile import FlashSale, Profile
from colonnade.rehearsal.report import build, render_html
from colonnade.rehearsal.run import Rehearsal, Rehearsed
from colonnade.rehearsal.staff import StockLevel
from colonnade.rehearsal.watch import ShopReading

LATENCY = Objective("checkout_latency", "Checkouts answered within one second", 0.99)


def second(at: float, *, purchases: float = 10, slow: float = 0, **more: object) -> Point:
    """One second of the rehearsal: `purchases` checkouts paid, `slow` of them past 1 s."""
    settings: dict[str, object] = {
        "at": at,
        "seconds": 1.0,
        "offered": purchases,
        "arriving": purchases / 0.15,
        "purchases": purchases,
        "answered": purchases,
        "requests": purchases * 6,
        "server_errors": 0,
        "slo_events": {"checkout_latency": (purchases - slow, purchases)},
        "checkout_p99": 0.2,
        "events_published": purchases * 4,
    }
    settings.update(more)
    return Point(**settings)  # type: ignore[arg-type]


def test_an_slo_breaks_while_its_window_falls_below_target_and_says_when() -> None:
    points = [second(t) for t in range(1, 31)]
    points[14] = second(15, slow=5, faults=("slow-provider",))

    (verdict,) = findings.verdicts(points, [LATENCY], window=5)

    assert not verdict.held
    # 5 slow of 50 in every window ending 15 to 19.
    assert verdict.broken == [Broken(15, 19, ("slow-provider",))]
    assert verdict.worst == pytest.approx(0.9)


def test_a_stretch_the_load_broke_stays_apart_from_one_a_fault_joined() -> None:
    points = [second(t, slow=1) for t in range(1, 11)]
    points += [second(t, slow=1, faults=("kill-worker",)) for t in range(11, 16)]

    (verdict,) = findings.verdicts(points, [LATENCY], window=5)

    assert verdict.broken == [Broken(1, 10), Broken(11, 15, ("kill-worker",))]


def test_the_first_seconds_are_judged_too() -> None:
    points = [second(t) for t in range(1, 21)]
    points[1] = second(2, slow=10, faults=("failing-provider",))

    (verdict,) = findings.verdicts(points, [LATENCY], window=10)

    # Broken from the second the window first fell below target, until it left the window.
    assert verdict.broken == [Broken(2, 11, ("failing-provider",))]


def test_the_highest_rate_held_is_over_a_window_in_which_every_slo_held() -> None:
    points = [second(t, purchases=t) for t in range(1, 21)]
    # The busiest seconds break the objective: the rate held is the one before them.
    points[17:] = [second(t, purchases=t, slow=t) for t in (18, 19, 20)]

    rate, at = findings.highest_held(points, [LATENCY], window=5)

    assert (rate, at) == (pytest.approx((13 + 14 + 15 + 16 + 17) / 5), 17)


def test_the_rate_of_the_mix_leaves_the_flash_sales_rush_out() -> None:
    points = [second(t, purchases=20) for t in range(1, 21)]
    points[9:12] = [second(t, purchases=80, flash_sale=True) for t in (10, 11, 12)]

    assert findings.highest_held(points, [LATENCY], window=5) == (pytest.approx(56), 12)
    assert findings.highest_held(points, [LATENCY], window=5, steady=True) == (20, 5)


def test_saturation_begins_where_a_condition_holds_for_seconds_not_one_scrape() -> None:
    points = [second(t, server_cpu=0.5) for t in range(1, 21)]
    points[4] = second(5, server_cpu=1.0)  # one busy scrape is not saturation
    for t in range(10, 21):
        points[t - 1] = second(t, server_cpu=0.97, outbox_lag=0.2)
    points[15:] = [second(t, server_cpu=0.97, outbox_lag=8.0) for t in range(16, 21)]

    found = findings.saturation(points, server_cores=1, database_cores=None)

    assert [(s.component, s.at) for s in found] == [("server CPU", 9), ("outbox", 15)]
    assert found[0].purchases_per_second == pytest.approx(10)


def test_every_pooled_connection_in_use_is_the_database_saturated() -> None:
    points = [second(t, pool_in_use=10, pool_size=10) for t in range(1, 6)]

    (found,) = findings.saturation(points, server_cores=2, database_cores=None)

    assert (found.component, found.detail) == ("database", "all 10 pooled connections in use")


def test_visitors_kept_far_longer_than_a_visit_takes_are_queuing() -> None:
    # 66.7 visitors arrive a second; 400 under way is six seconds of them.
    points = [second(t, in_flight=400 if t > 5 else 20) for t in range(1, 11)]

    (found,) = findings.saturation(points, server_cores=2, database_cores=None)

    assert (found.component, found.at) == ("queue", 5)


def test_a_machine_whose_every_core_is_busy_saturates_the_server_sharing_it() -> None:
    points = [second(t, server_cpu=1.2, database_cpu=0.4, machine_cpu=0.95) for t in range(1, 6)]

    (found,) = findings.saturation(points, server_cores=2, database_cores=2)

    assert found.component == "server CPU"
    assert found.detail.startswith("the machine's cores 95% busy")


def test_only_the_loads_own_doing_shows_the_servers_limit() -> None:
    faulted = [second(t, slow=5, faults=("slow-provider",)) for t in range(1, 11)]
    (broken_by_fault,) = findings.verdicts(faulted, [LATENCY], window=5)
    loaded = [second(t, slow=5) for t in range(1, 11)]
    (broken_by_load,) = findings.verdicts(loaded, [LATENCY], window=5)

    def limit(verdict: findings.Verdict) -> bool:
        return findings.figures(
            loaded, [verdict], [], processes=1, highest=0, window=5
        ).server_limit_reached

    assert not limit(broken_by_fault)
    assert limit(broken_by_load)


def test_capacity_figures_are_per_purchase_over_calm_seconds() -> None:
    calm = [second(t, server_cpu=0.5, database_cpu=0.2, pool_size=20) for t in range(1, 11)]
    faulted = [second(11, purchases=0, server_cpu=1.0, faults=("failing-provider",))]

    figures = findings.figures(calm + faulted, [], [], processes=2, highest=10.0, window=5)

    assert figures.server_cpu_per_purchase == pytest.approx(0.05)
    assert figures.database_cpu_per_purchase == pytest.approx(0.02)
    assert figures.events_per_purchase == pytest.approx(4)
    assert figures.outbox_events_per_second == pytest.approx(40)
    assert figures.pool_per_process == 10
    assert not figures.server_limit_reached


def rehearsed(
    *,
    statuses: dict[str, str | None],
    orders_in_shop: int,
    flash_sold: int,
    sold_by_shop: int,
) -> Rehearsed:
    """A finished rehearsal whose buyers were answered the orders in `statuses`, with what
    the shop says of each (None: no such order), and which holds `orders_in_shop` of them."""
    flash = FlashSale("GRINDER", at=10, stock=20, buyers=100)
    profile = Profile(30, 2, 5, 10, flash=flash)

    def reading(paid: float) -> ShopReading:
        return ShopReading(
            at=0,
            checkouts={"paid": paid},
            orders_placed=paid,
            requests=0,
            server_errors=0,
            slo={},
            checkout_buckets=(),
            events_published=0,
            pool_in_use=None,
            pool_size=None,
            outbox_lag=None,
            outbox_backlog=None,
            queue_waiting=None,
            process_cpu=None,
        )

    return Rehearsed(
        rehearsal=Rehearsal(
            "http://127.0.0.1:8000", "http://127.0.0.1:9100", None, "", "", profile
        ),
        profile=profile,
        started_at=datetime(2026, 11, 27, tzinfo=UTC),
        took_seconds=31.5,
        processes=1,
        server_pid=None,
        email="rehearsal@example.com",
        points=[second(t) for t in range(1, 31)],
        tally=Tally(
            orders=dict.fromkeys(statuses, "KENYA-AA"),
            flash_sold=flash_sold,
            outcomes=Counter(ok=len(statuses)),
        ),
        struck=[],
        first=reading(100),
        last=reading(100 + orders_in_shop),
        order_statuses=statuses,
        orders_in_shop=orders_in_shop,
        flash_before=StockLevel(200, 0, 180, 20, "main", 200),
        flash_after=StockLevel(200, 0, 180 + sold_by_shop, 20 - sold_by_shop, "main", 200),
    )


def test_the_summary_sets_the_shoppers_count_beside_the_shops() -> None:
    paid: dict[str, str | None] = {f"order-{n}": "paid" for n in range(50)}
    report = build(rehearsed(statuses=paid, orders_in_shop=50, flash_sold=20, sold_by_shop=20))

    summary = report["summary"]
    assert summary["purchases_answered"] == 50
    assert summary["paid_checkouts_by_metrics"] == 50
    assert summary["orders_in_shop"] == 50
    assert (summary["orders_lost"], summary["oversold_units"]) == (0, 0)
    assert summary["answered_orders_by_status"] == {"paid": 50}
    assert report["flash_sale"]["sold_by_shop"] == 20
    assert len(report["timeline"]) == 30
    assert [s["held"] for s in report["slos"]] == [True, True]


def test_an_answered_order_the_shop_does_not_hold_is_lost_and_a_sale_past_stock_oversold() -> None:
    # Five answered, the first of which the shop does not hold; it holds two more.
    statuses: dict[str, str | None] = {f"order-{n}": "paid" for n in range(1, 5)}
    statuses["order-0"] = None

    summary = build(rehearsed(statuses=statuses, orders_in_shop=6, flash_sold=22, sold_by_shop=21))[
        "summary"
    ]

    assert summary["orders_lost"] == 1
    assert summary["orders_unanswered"] == 2  # placed, but the buyer never heard
    assert summary["oversold_units"] == 2


def test_the_html_report_is_one_file_with_its_charts() -> None:
    report = build(rehearsed(statuses={}, orders_in_shop=0, flash_sold=0, sold_by_shop=0))

    page = render_html(report)

    assert "uPlot" in page
    for chart in ("chart-purchases", "chart-latency", "chart-cpu", "chart-outbox"):
        assert f'id="{chart}"' in page
    assert "<script src=" not in page
    assert "<link" not in page
