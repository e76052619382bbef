"""`colonnade rehearse` against a real `colonnade serve` (PostgreSQL, two workers): a short
ramp with a flash sale, the payment provider slow for a while, a worker killed and the
database's connections cut. It ends within its duration, its report's figures are the shop's
own (its metrics port and its orders), no order is lost and no unit oversold; and
`colonnade capacity` draws a plan from that report."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (
    RunningShop,
    checkouts_by_outcome,
    shop_environment,
    start_shop,
    stop,
)
from tests.e2e.staff import EMAIL, PASSWORD, Staff

SECONDS = 20
# Starting the command, stocking the shelves, the last visitors and the audit of the orders.
MARGIN_SECONDS = 25


@pytest.fixture(scope="module", params=["postgresql"])
def two_workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("rehearsed")
    # The crowd's visitors name their own addresses to a shop that trusts this machine.
    env = shop_environment(request, workdir, forwarded_allow_ips="127.0.0.1")
    process, base_url = start_shop(env, workdir, "--demo-data", "--workers", "2")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


def test_a_rehearsal_reports_the_shops_own_figures_and_loses_nothing(
    two_workers: RunningShop,
) -> None:
    shop = two_workers
    staff = Staff.sign_in(shop)
    paid_before = checkouts_by_outcome(shop.metrics_url).get("paid", 0)
    stem = shop.workdir / "rehearsal"
    began = time.monotonic()

    done = shop.cli(
        "rehearse",
        "--url",
        shop.base_url,
        "--metrics-url",
        shop.metrics_url,
        "--staff-email",
        EMAIL,
        "--staff-password",
        PASSWORD,
        "--duration",
        f"{SECONDS}s",
        "--baseline",
        "2",
        "--peak",
        "3",
        "--ramp",
        "6s",
        "--flash-at",
        "8s",
        "--flash-stock",
        "10",
        "--flash-buyers",
        "40",
        "--fault",
        "slow-provider@3s+3s",
        "--fault",
        "kill-worker@12s",
        "--fault",
        "cut-database@16s",
        "--database-url",
        shop.env["COLONNADE_DATABASE_URL"],
        "--output",
        str(stem),
    )

    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    assert took <= SECONDS + MARGIN_SECONDS, done.stdout
    assert "Rehearsal summary" in done.stdout
    report = json.loads(stem.with_suffix(".json").read_text())
    summary = report["summary"]
    # The profile, at most 5 s for the visitors still under way, and the last scrape.
    assert report["took_seconds"] <= SECONDS + 10
    assert report["shop"]["processes"] == 2
    # The shoppers' count, the shop's metrics and the shop's orders say the same.
    paid = checkouts_by_outcome(shop.metrics_url).get("paid", 0) - paid_before
    orders = staff.call("GET", "/admin/orders", params={"email": report["buyers_email"]})
    assert summary["purchases_answered"] > 0
    assert summary["purchases_answered"] == summary["paid_checkouts_by_metrics"] == paid
    assert summary["orders_in_shop"] == orders["total"] >= summary["purchases_answered"]
    assert (summary["orders_lost"], summary["oversold_units"]) == (0, 0)
    flash = report["flash_sale"]
    assert flash["sold_by_shop"] == flash["sold_answered"] <= 10
    # The faults struck, each as asked.
    struck = {f["kind"]: f["detail"] for f in report["faults"]}
    assert struck["kill-worker"].startswith("killed worker")
    assert struck["cut-database"].startswith("cut ")
    assert "tok_slow" in struck["slow-provider"]
    assert {s["name"] for s in report["slos"]} == {"availability", "checkout_latency"}
    page = stem.with_suffix(".html").read_text()
    assert "uPlot" in page
    assert 'id="chart-purchases"' in page

    planned = shop.cli(
        "capacity",
        "--report",
        str(stem.with_suffix(".json")),
        "--peak-orders-per-minute",
        "10000",
    )

    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "Capacity for 10,000 orders per minute" in planned.stdout
    assert "the first to saturate is the" in " ".join(planned.stdout.split())
