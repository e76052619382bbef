"""The operations page under load: `python -m bench.ops_view [--database postgresql] ...`.

Starts a real `colonnade serve` on a fresh database, lets guest shoppers buy from it for a
while (some of them a SKU that sells out midway), and meanwhile logs in at `/ops` in headless
chromium like an operator would. At the end of the load it saves a screenshot of the page and
prints what the page showed, so the page can be judged while the shop is busy, not after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench import load
from bench.load import LoadPlan, LoadReport
from bench.shop import (
    STAFF_EMAIL,
    STAFF_PASSWORD,
    BenchShop,
    DatabaseKind,
    stock_flash_sale,
    stock_the_shop,
)

CHROMIUM = "/usr/bin/chromium"
# Units of the SKU that sells out while the others keep selling: some buyers get 409.
SCARCE_UNITS = 40


def log_in(page: Page, base_url: str) -> None:
    """Log in at /ops as the benchmark's staff member."""
    page.goto(base_url + "/ops")
    page.fill("#email", STAFF_EMAIL)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if not page.url.endswith("/ops"):
        raise RuntimeError(f"could not log in to the operations page: {page.url}")


def watch_the_page(base_url: str, seconds: float, screenshot: Path) -> dict[str, Any]:
    """Log in at /ops, watch it refresh itself for `seconds`, save a screenshot; what the page's
    data endpoint said at that moment."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            log_in(page, base_url)
            page.wait_for_timeout(seconds * 1000)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            shown: dict[str, Any] = page.evaluate(
                "async () => (await fetch('/ops/data', {credentials: 'same-origin'})).json()"
            )
            return shown
        finally:
            browser.close()


def summary(data: dict[str, Any], report: LoadReport) -> str:
    series = data["series"]

    def last(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{known[-1]:.3g}" if known else "-"

    def peak(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{max(known):.3g}" if known else "-"

    firing = [a["alert"] for a in data["alerts"] if a["firing"]]
    lines = [
        f"load generator: {report.purchases} purchases in {report.window_seconds:.0f}s "
        f"({report.rate:.1f}/s, p50 {report.p50_ms or 0:.0f} ms, p99 {report.p99_ms or 0:.0f} ms)"
        f", sold out {report.sold_out_answers}, errors {report.errors or 'none'}",
        f"page, requests per second: last {last(series['requests_per_second'])}, "
        f"peak {peak(series['requests_per_second'])}",
        "page, latency seconds (last 30 s): "
        + ", ".join(f"{q} {last(v)}" for q, v in series["latency_seconds"].items()),
        "page, checkouts per minute (last): "
        + ", ".join(f"{o} {last(v)}" for o, v in series["checkouts_per_minute"].items()),
        f"page, totals: {json.dumps(data['totals']['checkouts'])}, "
        f"stock-outs {data['totals']['stockouts']:g}",
        f"page, outbox backlog last {last(series['outbox_backlog'])}, "
        f"lag last {last(series['outbox_lag_seconds'])} s",
        f"page, alerts firing: {', '.join(firing) or 'none'} (of {len(data['alerts'])})",
    ]
    return "\n".join(lines)


async def run(options: argparse.Namespace) -> None:
    database: DatabaseKind = options.database
    shop = BenchShop(
        database,
        workers=options.workers if database == "postgresql" else 1,
        settings={"COLONNADE_OPS_SAMPLE_SECONDS": "1"},
    )
    await shop.open()
    try:
        shelves = await stock_the_shop(shop.base_url, products=20, on_hand=10_000_000)
        await stock_flash_sale(shop.base_url, shelves.flash_sku, SCARCE_UNITS)
        plan = LoadPlan(
            base_url=shop.base_url,
            metrics_url=shop.metrics_url,
            server_pid=shop.pid,
            watch_database=False,
            skus=[*shelves.skus, shelves.flash_sku],
            clients=options.clients,
            scenario="throughput",
            max_warmup_seconds=0,
            seconds=options.seconds,
        )
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            buying = loop.run_in_executor(pool, load.run, plan)
            # The screenshot is taken a little before the buying stops: the page under load.
            shown = await asyncio.to_thread(
                watch_the_page, shop.base_url, max(5.0, options.seconds - 3), options.screenshot
            )
            report = await buying
        print(f"operations page under load ({database}): {options.screenshot}")
        print(summary(shown, report))
    finally:
        await shop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL only")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--screenshot", type=Path, default=Path("bench/results/ops-under-load.png"))
    options = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is needed to look at the page (Debian's chromium package)")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
