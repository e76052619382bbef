"""Browsing under Black Friday traffic: what one `colonnade serve` answers to shoppers who read.

    python -m bench.browse                 # SQLite demo shop, then PostgreSQL with many products
    python -m bench.browse --quick         # a short smoke run

Every figure is quoted next to one taken in the same run, because the machine is small and
shared: listings and searches per second are divided by `/health/live` per second (the HTTP
floor of the same server and load generator), and a search among many products by a listing
of the same catalog. A cold listing's cost is the server's CPU seconds per request while one
client asks for pages nobody asked for before (a distinct cache key each).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from rich.table import Table
from tests.e2e.buyers import checkout_body

from bench.measure import percentile, process_tree_cpu_seconds
from bench.report import RESULTS, console
from bench.shop import BenchShop, Staff, dsn_of

TARGET_LISTING_RATIO = 0.5
TARGET_LISTING_P99_MS = 25.0
TARGET_COLD_CPU_MS = 2.0
TARGET_SEARCH_RATIO = 0.5
TARGET_SEARCH_P99_MS = 50.0
TARGET_PURCHASES_WHILE_BROWSING = 0.8
BUYERS = 16
BROWSERS = 200
# A browser is a person: one page, a second to look at it, the next page.
BROWSER_THINK_SECONDS = 1.0
COMMON_PHRASE = "reading lamp"
# One product in this many carries the common phrase (20,000 of 100,000).
PHRASE_EVERY = 5


@dataclass(frozen=True)
class Figure:
    database: str
    route: str
    clients: int
    seconds: float
    requests: int
    errors: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu_ms_per_request: float | None


async def _hammer(
    session: aiohttp.ClientSession, urls: list[str], clients: int, seconds: float
) -> tuple[list[float], int]:
    """`clients` loops asking for the URLs in turn until `seconds` pass; latencies and errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(start: int) -> None:
        nonlocal errors
        for url in itertools.islice(itertools.cycle(urls), start, None):
            if time.monotonic() >= deadline:
                return
            began = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, errors


async def measure(
    shop: BenchShop, route: str, urls: list[str], clients: int, seconds: float
) -> Figure:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(shop.base_url, connector=connector) as session:
        # Warm: the first answers (and a cache's first fill) are not the steady state.
        await _hammer(session, urls, min(clients, 4), 1.0)
        cpu_before = process_tree_cpu_seconds(shop.pid)
        began = time.monotonic()
        latencies, errors = await _hammer(session, urls, clients, seconds)
        wall = time.monotonic() - began
        cpu = process_tree_cpu_seconds(shop.pid) - cpu_before
    latencies.sort()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return Figure(
        database=shop.kind,
        route=route,
        clients=clients,
        seconds=round(wall, 2),
        requests=len(latencies),
        errors=errors,
        rate=len(latencies) / wall,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        server_cpu_ms_per_request=cpu * 1000 / max(len(latencies), 1),
    )


async def cold_listings(shop: BenchShop, urls: list[str]) -> Figure:
    """One client, each URL once: every answer is a first read of its page."""
    async with aiohttp.ClientSession(shop.base_url) as session:
        cpu_before = process_tree_cpu_seconds(shop.pid)
        began = time.monotonic()
        latencies: list[float] = []
        errors = 0
        for url in urls:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                errors += response.status != 200
            latencies.append(time.perf_counter() - started)
        wall = time.monotonic() - began
        cpu = process_tree_cpu_seconds(shop.pid) - cpu_before
    latencies.sort()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return Figure(
        database=shop.kind,
        route="cold listing (a new page each)",
        clients=1,
        seconds=round(wall, 2),
        requests=len(urls),
        errors=errors,
        rate=len(urls) / wall,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        server_cpu_ms_per_request=cpu * 1000 / len(urls),
    )


async def _buy(session: aiohttp.ClientSession, sku: str) -> bool:
    """One guest purchase: cart, line, checkout."""
    async with session.post("/store/carts", json={"market": "US"}) as response:
        if response.status != 201:
            return False
        cart = (await response.json())["id"]
    async with session.post(
        f"/store/carts/{cart}/lines", json={"sku": sku, "quantity": 1}
    ) as response:
        if response.status != 200:
            return False
    async with session.post(
        f"/store/carts/{cart}/checkout",
        json=checkout_body("tok_visa"),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    ) as response:
        return response.status == 201


async def purchases(shop: BenchShop, sku: str, seconds: float, browsers: int) -> Figure:
    """Purchases per second of BUYERS buyers, with `browsers` people reading listings meanwhile."""
    done: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    pages = [
        f"/store/products?market={market}&limit=10&offset={offset}"
        for market, offset in itertools.product(["US", "DE", "JP"], [0, 10, 20])
    ]

    async def buyer(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            began = time.perf_counter()
            if await _buy(session, sku):
                done.append(time.perf_counter() - began)
            else:
                errors += 1

    async def browser(session: aiohttp.ClientSession, start: int) -> None:
        for url in itertools.islice(itertools.cycle(pages), start, None):
            if time.monotonic() >= deadline:
                return
            async with session.get(url) as response:
                await response.read()
            await asyncio.sleep(BROWSER_THINK_SECONDS)

    buying = aiohttp.TCPConnector(limit=BUYERS)
    reading = aiohttp.TCPConnector(limit=max(browsers, 1))
    async with (
        aiohttp.ClientSession(shop.base_url, connector=buying) as buyers,
        aiohttp.ClientSession(shop.base_url, connector=reading) as readers,
    ):
        cpu_before = process_tree_cpu_seconds(shop.pid)
        began = time.monotonic()
        await asyncio.gather(
            *(buyer(buyers) for _ in range(BUYERS)),
            *(browser(readers, n) for n in range(browsers)),
        )
        wall = time.monotonic() - began
        cpu = process_tree_cpu_seconds(shop.pid) - cpu_before
    done.sort()
    p50, p99 = percentile(done, 0.5), percentile(done, 0.99)
    return Figure(
        database=shop.kind,
        route=f"purchases, {BUYERS} buyers" + (f" + {browsers} browsers" if browsers else ""),
        clients=BUYERS + browsers,
        seconds=round(wall, 2),
        requests=len(done),
        errors=errors,
        rate=len(done) / wall,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        server_cpu_ms_per_request=cpu * 1000 / max(len(done), 1),
    )


def _first_pages() -> list[str]:
    """Pages at the head of the big catalog that differ by length, start and locale: more than
    a run can ask for, so none is asked twice."""
    locales = ["en-US", "en-GB", "en", "en-CA", "en-AU", "de-DE", "fr-FR", "es-ES", "it-IT"]
    urls = [
        f"/store/products?market=US&limit={limit}&offset={offset}&locale={locale}"
        for offset, locale, limit in itertools.product(range(20), locales, range(10, 31))
    ]
    random.Random(17).shuffle(urls)
    return urls


def _cold_urls(count: int) -> list[str]:
    """Distinct listing pages of the demo shop: market, locale and page size vary."""
    locales = ["", "en-US", "de-DE", "ja-JP", "de-AT", "en-GB", "fr-FR", "es-ES", "it-IT", "nl-NL"]
    urls = []
    for market, locale, limit in itertools.product(["US", "DE", "JP"], locales, range(20, 40)):
        suffix = f"&locale={locale}" if locale else ""
        urls.append(f"/store/products?market={market}&limit={limit}{suffix}")
    return urls[:count]


async def bench_demo_shop(options: argparse.Namespace) -> list[Figure]:
    shop = BenchShop("sqlite")
    try:
        await shop.open()
        shop.cli("demo-data")
        figures = [
            await measure(shop, "/health/live", ["/health/live"], 32, options.seconds),
            await measure(shop, "listing US", ["/store/products?market=US"], 32, options.seconds),
            await measure(
                shop,
                "search DE 'kaffee'",
                ["/store/products?market=DE&locale=de-DE&q=kaffee"],
                32,
                options.seconds,
            ),
            await cold_listings(shop, _cold_urls(options.cold_pages)),
        ]
        async with aiohttp.ClientSession() as session:
            staff = await Staff.sign_in(session, shop.base_url)
            sku = await staff.new_product(
                "BROWSE-BUY", "Benchmark beans", price_cents=1850, on_hand=10_000_000
            )
        figures.append(await purchases(shop, sku, options.seconds, browsers=0))
        figures.append(await purchases(shop, sku, options.seconds, browsers=BROWSERS))
    finally:
        await shop.close()
    return figures


async def seed_many_products(shop: BenchShop, count: int) -> None:
    """`count` published products priced in USD, straight into the catalog's and pricing's
    tables (the admin API would take an hour); every PHRASE_EVERY-th one is a reading lamp."""
    assert shop.database is not None
    async with aiohttp.ClientSession() as session:
        staff = await Staff.sign_in(session, shop.base_url)
        await staff.open_us_market()
    conn = await asyncpg.connect(dsn_of(shop.database))
    try:
        start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        products, variants, texts, prices = [], [], [], []
        for n in range(count):
            product_id = str(uuid.UUID(int=n + 1))
            created = datetime.fromtimestamp(start + n, UTC)
            products.append((product_id, "en-US", "published", None, created, created))
            sku = f"MANY-{n:06d}"
            variants.append((sku, product_id, 0, "{}"))
            title = (
                f"{COMMON_PHRASE.title()} model {n}"
                if n % PHRASE_EVERY == 0
                else f"Espresso cup no. {n}"
            )
            texts.append((product_id, "en-US", title, f"Item {n} of the big catalog."))
            prices.append((sku, "USD", 1000 + n % 5000))
        await conn.copy_records_to_table(
            "catalog_products",
            records=products,
            columns=["id", "default_locale", "status", "category_id", "created_at", "updated_at"],
        )
        await conn.copy_records_to_table(
            "catalog_variants",
            records=variants,
            columns=["sku", "product_id", "position", "attributes"],
        )
        await conn.copy_records_to_table(
            "catalog_translations",
            records=texts,
            columns=["product_id", "locale", "title", "description"],
        )
        await conn.copy_records_to_table(
            "pricing_prices", records=prices, columns=["sku", "currency", "amount"]
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def bench_many_products(options: argparse.Namespace) -> list[Figure]:
    shop = BenchShop("postgresql")
    try:
        await shop.open()
        await seed_many_products(shop, options.products)
        figures = [
            await measure(shop, "/health/live", ["/health/live"], 32, options.seconds),
            await measure(shop, "listing US", ["/store/products?market=US"], 32, options.seconds),
            await measure(
                shop,
                f"search '{COMMON_PHRASE}'",
                [f"/store/products?market=US&q={COMMON_PHRASE.replace(' ', '+')}"],
                32,
                options.seconds,
            ),
            # Nothing kept can answer these: each is a first page never asked for before.
            await measure(
                shop,
                f"search '{COMMON_PHRASE}', a new page each",
                [f"{url}&q={COMMON_PHRASE.replace(' ', '+')}" for url in _first_pages()],
                32,
                options.seconds,
            ),
            await cold_listings(shop, _first_pages()[: options.cold_pages]),
        ]
    finally:
        await shop.close()
    return figures


def _rate(figures: list[Figure], database: str, route: str) -> Figure | None:
    return next((f for f in figures if (f.database, f.route) == (database, route)), None)


def figures_table(figures: list[Figure]) -> Table:
    table = Table(title="Browsing, one `colonnade serve` worker")
    for name in ("database", "route", "clients", "req/s", "p50 ms", "p99 ms", "CPU ms/req"):
        table.add_column(name, justify="left" if name in ("database", "route") else "right")
    for f in figures:
        table.add_row(
            f.database,
            f.route,
            str(f.clients),
            f"{f.rate:,.0f}",
            "—" if f.p50_ms is None else f"{f.p50_ms:.1f}",
            "—" if f.p99_ms is None else f"{f.p99_ms:.1f}",
            "—" if f.server_cpu_ms_per_request is None else f"{f.server_cpu_ms_per_request:.2f}",
        )
    return table


def ratios(figures: list[Figure]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    floor = _rate(figures, "sqlite", "/health/live")
    listing = _rate(figures, "sqlite", "listing US")
    cold = _rate(figures, "sqlite", "cold listing (a new page each)")
    if floor and listing:
        rows.append(
            {
                "figure": "listing req/s ÷ /health/live req/s (SQLite, 32 clients)",
                "value": listing.rate / floor.rate,
                "target": f"≥ {TARGET_LISTING_RATIO}",
                "met": listing.rate / floor.rate >= TARGET_LISTING_RATIO,
            }
        )
        rows.append(
            {
                "figure": "listing p99 ms (SQLite, 32 clients)",
                "value": listing.p99_ms,
                "target": f"≤ {TARGET_LISTING_P99_MS:.0f}",
                "met": (listing.p99_ms or 0) <= TARGET_LISTING_P99_MS,
            }
        )
    if cold:
        rows.append(
            {
                "figure": "cold listing, server CPU ms per request (SQLite)",
                "value": cold.server_cpu_ms_per_request,
                "target": f"≤ {TARGET_COLD_CPU_MS:.0f}",
                "met": (cold.server_cpu_ms_per_request or 0) <= TARGET_COLD_CPU_MS,
            }
        )
    alone = _rate(figures, "sqlite", f"purchases, {BUYERS} buyers")
    browsed = _rate(figures, "sqlite", f"purchases, {BUYERS} buyers + {BROWSERS} browsers")
    if alone and browsed:
        rows.append(
            {
                "figure": f"purchases/s with {BROWSERS} browsers ÷ purchases/s alone (SQLite)",
                "value": browsed.rate / alone.rate,
                "target": f"≥ {TARGET_PURCHASES_WHILE_BROWSING}",
                "met": browsed.rate / alone.rate >= TARGET_PURCHASES_WHILE_BROWSING,
            }
        )
    pg_listing = _rate(figures, "postgresql", "listing US")
    pg_search = _rate(figures, "postgresql", f"search '{COMMON_PHRASE}'")
    pg_cold_search = _rate(figures, "postgresql", f"search '{COMMON_PHRASE}', a new page each")
    if pg_listing and pg_search:
        rows.append(
            {
                "figure": "search req/s ÷ listing req/s (PostgreSQL, many products)",
                "value": pg_search.rate / pg_listing.rate,
                "target": f"≥ {TARGET_SEARCH_RATIO}",
                "met": pg_search.rate / pg_listing.rate >= TARGET_SEARCH_RATIO,
            }
        )
    pg_cold_listing = _rate(figures, "postgresql", "cold listing (a new page each)")
    if pg_cold_listing:
        rows.append(
            {
                "figure": "cold listing, server CPU ms per request (PostgreSQL)",
                "value": pg_cold_listing.server_cpu_ms_per_request,
                "target": f"≤ {TARGET_COLD_CPU_MS:.0f}",
                "met": (pg_cold_listing.server_cpu_ms_per_request or 0) <= TARGET_COLD_CPU_MS,
            }
        )
    if pg_listing and pg_cold_search:
        rows.append(
            {
                "figure": "uncached search req/s ÷ listing req/s (PostgreSQL, many products)",
                "value": pg_cold_search.rate / pg_listing.rate,
                "target": f"≥ {TARGET_SEARCH_RATIO}",
                "met": pg_cold_search.rate / pg_listing.rate >= TARGET_SEARCH_RATIO,
            }
        )
        rows.append(
            {
                "figure": "uncached search p99 ms (PostgreSQL, many products)",
                "value": pg_cold_search.p99_ms,
                "target": f"≤ {TARGET_SEARCH_P99_MS:.0f}",
                "met": (pg_cold_search.p99_ms or 0) <= TARGET_SEARCH_P99_MS,
            }
        )
    return rows


def ratios_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Same-run ratios against the issue's targets")
    for name in ("figure", "value", "target", "met"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    for row in rows:
        value = row["value"]
        table.add_row(
            row["figure"],
            "—" if value is None else f"{value:,.3f}",
            row["target"],
            "yes" if row["met"] else "NO",
        )
    return table


def write_json(
    options: argparse.Namespace, figures: list[Figure], rows: list[dict[str, Any]]
) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"browse-{stamp}.json"
    record = {
        "written_at": stamp,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "arguments": vars(options),
        "figures": [asdict(f) for f in figures],
        "ratios": rows,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


async def run(options: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    if "sqlite" in options.databases:
        figures += await bench_demo_shop(options)
    if "postgresql" in options.databases:
        figures += await bench_many_products(options)
    return figures


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.browse", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="per measured route")
    parser.add_argument("--products", type=int, default=100_000, help="PostgreSQL catalog size")
    parser.add_argument("--cold-pages", type=int, default=400, help="first reads to time")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", type=lambda text: text.split(",")
    )
    parser.add_argument("--quick", action="store_true", help="3 s per route, 10,000 products")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.products, options.cold_pages = 3.0, 10_000, 100
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    figures = asyncio.run(run(options))
    rows = ratios(figures)
    console.print(figures_table(figures))
    console.print(ratios_table(rows))
    console.print(f"written to {write_json(options, figures, rows)}")


if __name__ == "__main__":
    main()
