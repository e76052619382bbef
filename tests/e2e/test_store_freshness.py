"""Two worker processes each keep the store's pages in memory, yet a staff change reaches
shoppers of both within a second: a new price, and a product taken out of the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
from tests.e2e.staff import Staff

# Enough simultaneous connections that both workers answer some of them.
BURST = 24


@pytest.fixture(scope="module", params=["postgresql"])
def two_workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("fresh")
    env = shop_environment(request, workdir)
    process, base_url = start_shop(env, workdir, "--demo-data", "--workers", "2")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


async def _burst(base_url: str, path: str) -> list[httpx.Response]:
    """The same GET on BURST new connections at once."""
    fresh = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=fresh) as http:
        return await asyncio.gather(*(http.get(path) for _ in range(BURST)))


def burst(base_url: str, path: str) -> list[httpx.Response]:
    return asyncio.run(_burst(base_url, path))


def price_of(listing: list[dict[str, Any]], sku: str) -> Any:
    return next(v["price"] for p in listing for v in p["variants"] if v["sku"] == sku)


def seconds_until_all(base_url: str, path: str, holds: Callable[[httpx.Response], bool]) -> float:
    """How long after now until every answer of a burst holds; fails after two seconds."""
    began = time.monotonic()
    while not all(holds(r) for r in burst(base_url, path)):
        assert time.monotonic() - began < 2.0, f"{path} still stale after two seconds"
        time.sleep(0.05)
    return time.monotonic() - began


LISTING = "/store/products?market=US&limit=100"


def test_a_price_change_reaches_both_workers_within_a_second(two_workers: RunningShop) -> None:
    staff = Staff.sign_in(two_workers)
    sku = staff.new_product(price_cents=1000, on_hand=50)
    seconds_until_all(
        two_workers.base_url,
        LISTING,
        lambda r: price_of(r.json(), sku) == {"amount": 1000, "currency": "USD"},
    )

    staff.call("PUT", f"/admin/prices/{sku}", json={"prices": [{"amount": 750, "currency": "USD"}]})

    took = seconds_until_all(
        two_workers.base_url,
        LISTING,
        lambda r: price_of(r.json(), sku) == {"amount": 750, "currency": "USD"},
    )
    assert took < 1.0


def test_a_withdrawn_product_leaves_both_workers_within_a_second(
    two_workers: RunningShop,
) -> None:
    staff = Staff.sign_in(two_workers)
    sku = staff.new_product(price_cents=1000, on_hand=50)
    # A new product reaches the other worker within a second too: wait for it there first.
    seconds_until_all(
        two_workers.base_url,
        LISTING,
        lambda r: any(p["variants"][0]["sku"] == sku for p in r.json()),
    )
    listing = httpx.get(two_workers.base_url + LISTING).json()
    product_id = next(p["id"] for p in listing if p["variants"][0]["sku"] == sku)
    page = f"/store/products/{product_id}?market=US"
    seconds_until_all(two_workers.base_url, page, lambda r: r.status_code == 200)

    staff.call("PATCH", f"/admin/products/{product_id}", json={"status": "draft"})
    withdrawn = time.monotonic()

    seconds_until_all(two_workers.base_url, page, lambda r: r.status_code == 404)
    # A worker that has not heard yet may still show the listing it kept while already
    # answering 404 for a product page it had to read again: each route is waited for.
    seconds_until_all(
        two_workers.base_url, LISTING, lambda r: product_id not in {p["id"] for p in r.json()}
    )
    assert time.monotonic() - withdrawn < 1.0
