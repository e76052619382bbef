"""Several worker processes on one PostgreSQL database sell exactly the stock, as one does;
SQLite, whose writers queue inside one process, refuses more than one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.buyers import flash_sale
from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
from tests.e2e.staff import Staff


@pytest.fixture(scope="module", params=["postgresql"])
def two_workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("workers")
    env = shop_environment(request, workdir)
    process, base_url = start_shop(env, workdir, "--demo-data", "--workers", "2")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


def test_two_workers_sell_exactly_the_stock_in_a_flash_sale(two_workers: RunningShop) -> None:
    staff = Staff.sign_in(two_workers)
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)

    tally = asyncio.run(flash_sale(two_workers.base_url, sku, buyers))

    assert tally.statuses == {201: stock, 409: buyers - stock}, tally.codes
    level = staff.stock(sku)
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    paid = [o for o in staff.orders_for(sku) if o["status"] == "paid"]
    assert sorted(o["id"] for o in paid) == sorted(
        p.body["id"] for p in tally.purchases if p.status == 201
    )


def checkouts_by_outcome(metrics_url: str) -> dict[str, float]:
    scraped = httpx.get(f"{metrics_url}/metrics", timeout=30).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "colonnade_checkouts"
        for sample in family.samples
        if sample.name == "colonnade_checkouts_total"
    }


def test_the_one_metrics_port_adds_up_every_worker(two_workers: RunningShop) -> None:
    staff = Staff.sign_in(two_workers)
    sku = staff.new_product(price_cents=1999, on_hand=5)
    before = checkouts_by_outcome(two_workers.metrics_url)

    tally = asyncio.run(flash_sale(two_workers.base_url, sku, 40))

    assert tally.statuses == {201: 5, 409: 35}, tally.codes
    now = checkouts_by_outcome(two_workers.metrics_url)
    assert now.get("paid", 0) - before.get("paid", 0) == 5
    assert now.get("out_of_stock", 0) - before.get("out_of_stock", 0) == 35
    # One listener, in the parent process: the public port has no metrics to offer.
    assert httpx.get(f"{two_workers.base_url}/metrics").status_code == 404
    # The operations page judges the whole shop too, whichever worker draws it: once it has
    # sampled, its totals are those of the metrics port (every worker), not one worker's share.
    deadline = time.monotonic() + 60
    while True:
        shown = staff.call("GET", "/ops/data")["totals"]["checkouts"]
        if {k: shown.get(k, 0) for k in now} == now:
            break
        assert time.monotonic() < deadline, f"the page shows {shown}, the shop {now}"
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("database_url", "secret", "refusal"),
    [
        ("sqlite+aiosqlite:///./workers.db", "k" * 40, "SQLite is served by one worker"),
        ("postgresql+asyncpg://postgres@127.0.0.1/none", None, "needs COLONNADE_SECRET_KEY"),
    ],
)
def test_more_than_one_worker_is_refused_where_it_cannot_work(
    tmp_path: Path, database_url: str, secret: str | None, refusal: str
) -> None:
    env = {"COLONNADE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    if secret:
        env["COLONNADE_SECRET_KEY"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "colonnade", "serve", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert refusal in " ".join(done.stdout.split())
