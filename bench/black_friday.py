"""A simulated Black Friday on the insights page: `python -m bench.black_friday [--shoppers N]`.

Starts a real `colonnade serve` on a fresh SQLite shop and writes its warehouse as a sealing
would: four ordinary weeks, then yesterday (UTC) as Black Friday and today so far. Black
Friday has four times the shoppers, a rush at midnight and in the evening, carts that never
reach checkout, declined cards, SKUs that sell out and come back (one only the next day),
returning customers (as pseudonyms), and what the shop's routes answered per minute, slower
at the peaks. Then it logs in at `/ops/insights` in headless
chromium, shows yesterday, saves a screenshot and prints the figures the page shows.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright
from rich.progress import Progress

from bench.ops_view import CHROMIUM, log_in
from bench.report import console
from bench.shop import STAFF_EMAIL, STAFF_PASSWORD, BenchShop
from colonnade.modules.analytics import domain
from colonnade.modules.analytics.domain import Fact, RouteMinute, SystemMinute
from colonnade.modules.analytics.warehouse import Warehouse, table_of

MARKETS = [("US", "USD", 2_500), ("DE", "EUR", 2_200), ("JP", "JPY", 3_000)]
SKUS = [f"BF-{n:03d}" for n in range(40)]
DECLINE_REASONS = ["card_declined", "insufficient_funds", "expired_card"]
ROUTES = {
    "GET /store/products": 0.004,
    "POST /store/carts": 0.006,
    "POST /store/carts/{cart_id}/lines": 0.008,
    "POST /store/carts/{cart_id}/checkout": 0.030,
}
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)


def shape(hour: int, black_friday: bool) -> float:
    """An hour's share of a day's orders: evenings busy; on Black Friday a rush as the sale
    opens at midnight and another after work."""
    ordinary = 0.3 + math.exp(-((hour - 20) ** 2) / 8) + 0.5 * math.exp(-((hour - 12) ** 2) / 6)
    if not black_friday:
        return ordinary
    return ordinary + 2.5 * math.exp(-(hour**2) / 2) + 1.5 * math.exp(-((hour - 19) ** 2) / 4)


def a_day(
    rng: random.Random, day: datetime, shoppers: int, black_friday: bool, buyers: list[str]
) -> list[Fact]:
    facts: list[Fact] = []
    weights = [shape(hour, black_friday) for hour in range(24)]
    scale = shoppers / sum(weights)
    for hour, weight in enumerate(weights):
        for _ in range(round(weight * scale)):
            at = day + timedelta(hours=hour, seconds=rng.randrange(3600))
            market, currency, price = rng.choice(MARKETS)
            cart = uuid.uuid4().hex
            facts.append(domain.cart_started_fact(cart, at - timedelta(minutes=4), market, 1))
            roll = rng.random()
            if roll < 0.25:
                continue  # a cart that never reached checkout
            if roll < 0.31:
                facts.append(
                    domain.checkout_refused_fact(
                        cart, at, market, "payment_declined", rng.choice(DECLINE_REASONS)
                    )
                )
                continue
            order = str(uuid.uuid4())
            sku = rng.choice(SKUS[:10] if black_friday and rng.random() < 0.6 else SKUS)
            quantity = rng.choice([1, 1, 1, 2])
            total = {"amount": price * quantity, "currency": currency}
            # Three buyers in ten are guests; of the customers, some bought before.
            if rng.random() < 0.3:
                customer = ""
            elif buyers and rng.random() < 0.3:
                customer = rng.choice(buyers)
            else:
                customer = uuid.uuid4().hex
                buyers.append(customer)
            facts.append(domain.placed_fact(order, at, market, total, quantity, customer))
            facts += domain.line_facts(
                order, at, market, [{"sku": sku, "quantity": quantity, "line_total": total}]
            )
            facts.append(domain.paid_fact(order, at + timedelta(seconds=2), total))
    if black_friday:
        for n, sku in enumerate(SKUS[:4]):
            out = day + timedelta(hours=1 + 4 * n, minutes=rng.randrange(60))
            facts.append(domain.stock_out_fact(f"bf-out-{n}", sku, out))
            back = out + timedelta(hours=2 + n if n < 3 else 20)
            facts.append(domain.restock_fact(f"bf-back-{n}", sku, back, 100))
    return facts


def route_minutes(rng: random.Random, day: datetime) -> list[RouteMinute]:
    """What the routes answered each minute of Black Friday: slower when busier."""
    minutes = []
    for minute in range(24 * 60):
        load = shape(minute // 60, black_friday=True)
        for route, typical in ROUTES.items():
            requests = max(1, round(load * 40 * rng.uniform(0.8, 1.2)))
            latency = typical * (1 + load**2 / 3)
            buckets: dict[float, int] = {}
            for _ in range(requests):
                took = rng.expovariate(1 / latency)
                bound = next(b for b in BOUNDS if took <= b)
                buckets[bound] = buckets.get(bound, 0) + 1
            minutes.append(
                RouteMinute(
                    minute=day + timedelta(minutes=minute),
                    process="bench",
                    route=route,
                    requests=requests,
                    errors=1 if route.endswith("checkout") and rng.random() < load / 40 else 0,
                    buckets=tuple(sorted(buckets.items())),
                )
            )
    return minutes


def readings(rng: random.Random, day: datetime) -> list[SystemMinute]:
    """What the machinery read each minute of Black Friday: checkouts by outcome, the
    outbox's lag and the pool, busier with the load."""
    found = []
    for minute in range(24 * 60):
        load = shape(minute // 60, black_friday=True)
        at = day + timedelta(minutes=minute)
        paid = max(0, round(load * 12 * rng.uniform(0.8, 1.2)))
        found += [
            SystemMinute(at, "bench", "checkouts", "paid", paid),
            SystemMinute(at, "bench", "checkouts", "payment_declined", round(paid * 0.06)),
            SystemMinute(at, "bench", "outbox_lag_seconds", "", 0.05 * load**2 * rng.random()),
            SystemMinute(at, "bench", "pool_in_use", "", min(20, round(2 + load * 3))),
            SystemMinute(at, "bench", "pool_size", "", 20),
        ]
    return found


def write_warehouse(root: Path, shoppers: int) -> datetime:
    """Four ordinary weeks, a Black Friday yesterday, and today so far; yesterday's
    midnight."""
    rng = random.Random(11)
    warehouse = Warehouse(root)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    black_friday = today - timedelta(days=1)
    buyers: list[str] = []
    with Progress(console=console) as progress:
        task = progress.add_task("writing the warehouse", total=29)
        for back in range(28, 0, -1):
            day = black_friday - timedelta(days=back)
            warehouse.write(f"day-{back}", table_of(a_day(rng, day, shoppers // 4, False, buyers)))
            progress.advance(task)
        warehouse.write("black-friday", table_of(a_day(rng, black_friday, shoppers, True, buyers)))
        now = datetime.now(UTC)
        today_so_far = [
            f for f in a_day(rng, today, shoppers // 4, False, buyers) if f.occurred_at < now
        ]
        warehouse.write("today", table_of(today_so_far))
        warehouse.write_minutes(
            "bench", route_minutes(rng, black_friday), readings(rng, black_friday)
        )
        progress.advance(task)
    return black_friday


def look(base_url: str, day: str, screenshot: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            log_in(page, base_url)
            page.goto(f"{base_url}/ops/insights?from={day}&to={day}")
            page.wait_for_function(
                "() => document.querySelector('#chart-orders canvas') !== null", timeout=30_000
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()


def figures(base_url: str, start: datetime) -> dict[str, Any]:
    window = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        token = http.post(
            "/auth/token", data={"username": STAFF_EMAIL, "password": STAFF_PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def ask(route: str, **more: str) -> Any:
            answer = http.get(
                f"/admin/insights/{route}", params={**window, **more}, headers=headers
            )
            answer.raise_for_status()
            return answer.json()

        return {
            "sales": ask("sales"),
            "funnel": ask("funnel"),
            "declines": ask("declines"),
            "stock_outs": ask("stock-outs"),
            "customers": ask("customers"),
            "routes": ask("routes", limit="4"),
            "busiest_hour": max(
                ask("timeline", every="hour")["moments"],
                key=lambda m: sum(market["orders"] for market in m["orders"]),
            ),
            "forecast": [
                {k: v for k, v in market.items() if k != "hours"}
                for market in http.get("/admin/insights/forecast", headers=headers).json()[
                    "markets"
                ]
            ],
        }


async def run(options: argparse.Namespace) -> None:
    shop = BenchShop("sqlite")
    await shop.open()
    try:
        root = shop.workdir / "colonnade.db.analytics"
        black_friday = write_warehouse(root, options.shoppers)
        day = black_friday.date().isoformat()
        await asyncio.to_thread(look, shop.base_url, day, options.screenshot)
        found = await asyncio.to_thread(figures, shop.base_url, black_friday)
        console.print(f"insights page on Black Friday ({day}): {options.screenshot}")
        console.print_json(data=found)
    finally:
        await shop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shoppers", type=int, default=20_000, help="Black Friday's carts (about 7 in 10 buy)"
    )
    parser.add_argument(
        "--screenshot", type=Path, default=Path("bench/results/insights-black-friday.png")
    )
    options = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is needed to look at the page (Debian's chromium package)")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
