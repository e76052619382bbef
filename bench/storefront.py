"""The storefront's pages: how long each kind takes the server to answer, in the demo shop.

    python -m bench.storefront                # SQLite, then PostgreSQL
    python -m bench.storefront --quick        # fewer rounds, SQLite only

One shopper at a time walks the shop as a person would (home, a category, a search, a
product, the cart, checkout, the confirmation, an account), many rounds, in every market, so
each answer's time is the server's own (and the loopback's), not a queue's. Beside each page
kind: the server's CPU milliseconds per page over the whole walk, and `/health/live` timed
the same way in the same run, the floor every page stands on. The target is the p95 of each
page kind under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import unescape
from typing import Any

import aiohttp
from rich.progress import Progress
from rich.table import Table

from bench.measure import percentile, process_tree_cpu_seconds
from bench.report import RESULTS, console
from bench.shop import BenchShop

TARGET_P95_MS = 50.0
PREFIXES = ("en-us", "de-de", "ja-jp")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
PRODUCT = re.compile(r'href="/[a-z]{2}-[a-z]{2}/p/([^"]+)"')
ADDRESS = {
    "name": "Bench Shopper",
    "line1": "1 Load Street",
    "postal_code": "10115",
    "city": "Berlin",
    "method": "card",
    "token": "tok_visa",
}


@dataclass(frozen=True)
class Figure:
    database: str
    page: str
    answers: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    meets_target: bool


class Walk:
    """One shopper's session (its cookies) and the times of what it asked for, by page kind."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.times: dict[str, list[float]] = defaultdict(list)

    async def get(self, kind: str, path: str, expect: int = 200) -> str:
        began = time.perf_counter()
        async with self.session.get(self.base_url + path, allow_redirects=False) as answer:
            text = await answer.text()
        self.times[kind].append((time.perf_counter() - began) * 1000)
        if answer.status != expect:
            raise RuntimeError(f"GET {path}: {answer.status}, expected {expect}\n{text[:500]}")
        return text

    async def post(self, kind: str, path: str, fields: dict[str, str]) -> str:
        began = time.perf_counter()
        async with self.session.post(
            self.base_url + path,
            data=fields,
            allow_redirects=False,
            headers={"Sec-Fetch-Site": "same-origin"},
        ) as answer:
            await answer.read()
            location = answer.headers.get("location", "")
        self.times[kind].append((time.perf_counter() - began) * 1000)
        if answer.status != 303:
            raise RuntimeError(f"POST {path}: {answer.status}, expected 303")
        return location.removeprefix(self.base_url)


def hidden_fields(page: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in HIDDEN.findall(page)}


async def one_round(walk: Walk, prefix: str, shopper: int) -> None:
    """A shopper's visit in one market: browse, buy two products as a guest, and sign in."""
    await walk.get("health/live (floor)", "/health/live")
    home = await walk.get("home", f"/{prefix}/")
    await walk.get("category", f"/{prefix}/c/coffee")
    await walk.get("search", f"/{prefix}/search?q=tea")
    products = list(dict.fromkeys(PRODUCT.findall(home)))
    for product_id in products[:2]:
        page = await walk.get("product", f"/{prefix}/p/{product_id}")
        fields = hidden_fields(page)
        await walk.post("add to cart (post)", f"/{prefix}/cart/lines", {**fields, "quantity": "1"})
    await walk.get("cart", f"/{prefix}/cart")
    checkout = await walk.get("checkout", f"/{prefix}/checkout")
    email = f"bench-{shopper}-{uuid.uuid4().hex[:6]}@example.com"
    country = prefix[-2:].upper()
    placed = await walk.post(
        "buy (post)",
        f"/{prefix}/checkout",
        {**hidden_fields(checkout), **ADDRESS, "email": email, "country": country},
    )
    await walk.get("confirmation", placed)
    await walk.get("404 page", f"/{prefix}/no-such-page", expect=404)


async def account_round(walk: Walk, prefix: str, shopper: int) -> None:
    register = await walk.get("registration form", f"/{prefix}/account/register")
    await walk.post(
        "register (post)",
        f"/{prefix}/account/register",
        {
            **hidden_fields(register),
            "name": "Bench",
            "email": f"account-{shopper}-{uuid.uuid4().hex[:6]}@example.com",
            "password": "benchmark password only",
        },
    )
    await walk.get("account", f"/{prefix}/account")


async def bench(kind: str, rounds: int) -> tuple[list[Figure], float]:
    shop = BenchShop(
        kind,  # type: ignore[arg-type]
        demo=True,
        settings={
            # One address makes every request: the per-address allowances would measure themselves.
            "COLONNADE_RATE_LIMIT_REGISTRATION_PER_ADDRESS": "100000000",
            "COLONNADE_RATE_LIMIT_REGISTRATION_PER_EMAIL": "100000000",
            "COLONNADE_LOG_LEVEL": "WARNING",
        },
    )
    await shop.open()
    try:
        walk_times: dict[str, list[float]] = defaultdict(list)
        cpu_before = process_tree_cpu_seconds(shop.pid)
        answers = 0
        with Progress(console=console) as progress:
            task = progress.add_task(f"Walking the {kind} shop", total=rounds)
            for shopper in range(rounds):
                # Cookies of an address (127.0.0.1) are kept only by an "unsafe" jar.
                jar = aiohttp.CookieJar(unsafe=True)
                async with aiohttp.ClientSession(cookie_jar=jar) as session:
                    walk = Walk(session, shop.base_url)
                    prefix = PREFIXES[shopper % len(PREFIXES)]
                    await one_round(walk, prefix, shopper)
                    if shopper % 4 == 0:
                        await account_round(walk, prefix, shopper)
                for page, times in walk.times.items():
                    walk_times[page].extend(times)
                    answers += len(times)
                progress.advance(task)
        cpu_ms = (process_tree_cpu_seconds(shop.pid) - cpu_before) * 1000 / max(answers, 1)
    finally:
        await shop.close()
    figures = []
    for page, times in walk_times.items():
        ordered = sorted(times)
        p95 = percentile(ordered, 0.95)
        figures.append(
            Figure(
                database=kind,
                page=page,
                answers=len(ordered),
                p50_ms=percentile(ordered, 0.5),
                p95_ms=p95,
                p99_ms=percentile(ordered, 0.99),
                meets_target=p95 is not None and p95 < TARGET_P95_MS,
            )
        )
    return figures, cpu_ms


def show(figures: list[Figure], cpu: dict[str, float]) -> None:
    table = Table(
        title=f"Storefront pages, one shopper at a time (target p95 < {TARGET_P95_MS:g} ms)"
    )
    for column in ("database", "page", "answers", "p50 ms", "p95 ms", "p99 ms", "target"):
        table.add_column(column, justify="left" if column in ("database", "page") else "right")
    for figure in figures:
        table.add_row(
            figure.database,
            figure.page,
            str(figure.answers),
            *(
                f"{value:.1f}" if value is not None else "—"
                for value in (figure.p50_ms, figure.p95_ms, figure.p99_ms)
            ),
            "—"
            if "post" in figure.page or "floor" in figure.page
            else ("met" if figure.meets_target else "MISSED"),
        )
    console.print(table)
    for database, milliseconds in cpu.items():
        console.print(
            f"{database}: server CPU per answer over the whole walk: {milliseconds:.2f} ms"
        )


async def run(options: argparse.Namespace) -> list[Figure]:
    kinds = ["sqlite"] if options.quick else ["sqlite", "postgresql"]
    rounds = 12 if options.quick else options.rounds
    figures: list[Figure] = []
    cpu: dict[str, float] = {}
    for kind in kinds:
        found, cpu[kind] = await bench(kind, rounds)
        figures += found
    show(figures, cpu)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"storefront-{stamp}.json"
    record: dict[str, Any] = {
        "figures": [asdict(f) for f in figures],
        "server_cpu_ms_per_answer": cpu,
        "rounds": rounds,
    }
    path.write_text(json.dumps(record, indent=2))
    console.print(f"written to {path}")
    return figures


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.storefront", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="12 rounds on SQLite only")
    parser.add_argument("--rounds", type=int, default=60, help="shopper visits per database")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_options()))
