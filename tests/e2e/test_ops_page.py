"""The operations page in a real browser (Debian's chromium, headless): a staff member logs
in through the form, guests buy over HTTP, and the page's charts and totals show the
purchases; with a checkout waiting room, the queue panel shows the tickets and admissions the
shop counted, and without one it says the room is off. A screenshot is kept under
tests/artifacts/.

Locally the test skips when chromium is missing; with COLONNADE_REQUIRE_BROWSER=1 (CI) it
fails instead. scripts/setup.sh installs chromium where it can."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.e2e.buyers import checkout_body
from tests.e2e.conftest import RunningShop, counted_by, shop_environment, start_shop, stop
from tests.e2e.staff import EMAIL, PASSWORD, Staff

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("COLONNADE_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Generous: a shared CI machine may be slow to render.
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("ops-shop")
    # Sampling every second, so the page has something to draw within seconds.
    env = shop_environment(request, workdir, ops_sample_seconds="1")
    process, base_url = start_shop(env, workdir, "--demo-data")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


@pytest.fixture(scope="module", params=["sqlite"])
def queueing_shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    """A shop that lets one checkout run at a time, each taking half a second at the
    provider, so buyers who come together queue."""
    workdir = tmp_path_factory.mktemp("queueing-shop")
    env = shop_environment(
        request,
        workdir,
        ops_sample_seconds="1",
        checkout_concurrency="1",
        test_gateway_latency_seconds="0.5",
    )
    process, base_url = start_shop(env, workdir, "--demo-data")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


def buy(base_url: str, sku: str, token: str = "tok_visa") -> int:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        cart = http.post("/store/carts", json={"market": "US"}).json()
        added = http.post(f"/store/carts/{cart['id']}/lines", json={"sku": sku, "quantity": 1})
        assert added.status_code == 200, added.text
        answer = http.post(
            f"/store/carts/{cart['id']}/checkout",
            json=checkout_body(token),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        return answer.status_code


async def buy_in_turn(http: httpx.AsyncClient, sku: str) -> int:
    """A guest purchase that, when queued, comes back with its ticket until it is let in."""
    cart = (await http.post("/store/carts", json={"market": "US"})).json()
    added = await http.post(f"/store/carts/{cart['id']}/lines", json={"sku": sku, "quantity": 1})
    assert added.status_code == 200, added.text
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    while True:
        answer = await http.post(
            f"/store/carts/{cart['id']}/checkout", json=checkout_body(), headers=headers
        )
        if answer.status_code != 503 or answer.json()["code"] != "checkout_queued":
            return answer.status_code
        headers["Queue-Ticket"] = answer.json()["ticket"]
        # Sooner than Retry-After asks, so the test is quick; an early holder only waits.
        await asyncio.sleep(0.2)


async def buy_together(base_url: str, sku: str, buyers: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        return list(await asyncio.gather(*(buy_in_turn(http, sku) for _ in range(buyers))))


def queue_answers(metrics_url: str) -> dict[str, float]:
    """The waiting room's answers by outcome, as the shop's metrics port counts them."""
    return counted_by(metrics_url, "colonnade_checkout_queue_total", "outcome")


@contextmanager
def browser_page(
    chromium: Path, *, height: int
) -> Iterator[tuple[BrowserContext, Page, list[str]]]:
    """A page of headless chromium, and the script errors and CSP refusals it meets."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": height})
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            yield context, page, problems
        finally:
            browser.close()


def log_in(
    page: Page, base_url: str, password: str, *, email: str = EMAIL, path: str = "/ops"
) -> None:
    """Open `path` as a visitor (which leads to the login form) and log in there."""
    page.goto(base_url + path)
    assert page.url.endswith("/ops/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_after_some_purchases_the_operations_page_charts_them(
    shop: RunningShop, chromium: Path, request: pytest.FixtureRequest
) -> None:
    staff = Staff.sign_in(shop)
    sku = staff.new_product(price_cents=1_500, on_hand=3)
    assert [buy(shop.base_url, sku) for _ in range(4)] == [201, 201, 201, 409]
    assert (
        buy(shop.base_url, staff.new_product(price_cents=900, on_hand=5), "tok_chargeDeclined")
        == 402
    )

    with browser_page(chromium, height=1200) as (context, page, problems):
        log_in(page, shop.base_url, "not the password at all")
        assert page.url.endswith("/ops/login")
        assert "password is wrong" in page.inner_text(".error")
        assert context.cookies() == []

        log_in(page, shop.base_url, PASSWORD)
        assert page.url == shop.base_url + "/ops"
        session = next(c for c in context.cookies() if c["name"] == "colonnade_ops")
        assert session["httpOnly"]
        assert session["sameSite"] == "Strict"

        # The checkouts chart has drawn a 'paid' series above zero...
        page.wait_for_function(
            "() => Number(document.querySelector('#chart-checkouts')"
            ".getAttribute('data-max-paid')) > 0",
            timeout=WAIT_MS,
        )
        assert page.locator("#chart-checkouts canvas").count() == 1
        # ...and the totals count every purchase by its outcome.
        totals = page.locator("#checkout-totals")
        assert totals.locator("[data-outcome=paid] dd").inner_text() == "3"
        assert totals.locator("[data-outcome=out_of_stock] dd").inner_text() == "1"
        assert totals.locator("[data-outcome=payment_declined] dd").inner_text() == "1"
        assert float(page.inner_text("#stockout-total")) >= 1
        page.wait_for_function(
            "() => Number(document.querySelector('#chart-requests')"
            ".getAttribute('data-max-requests')) > 0",
            timeout=WAIT_MS,
        )
        assert page.locator("#alert-rows tr[data-alert]").count() >= 6
        assert page.locator("#chart-latency").get_attribute("data-series") == "p50,p95,p99"
        # This shop has no waiting room: the queue panel says so and draws nothing.
        assert page.locator("#checkout-queue").get_attribute("data-state") == "off"
        assert page.locator("#queue-off").is_visible()
        assert not page.locator("#queue-charts").is_visible()
        assert page.locator("#queue-charts canvas").count() == 0

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / f"ops-{request.node.callspec.id}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"operations page screenshot: {screenshot}")
        assert problems == []


def test_the_checkout_queue_panel_shows_what_the_waiting_room_counted(
    queueing_shop: RunningShop, chromium: Path
) -> None:
    staff = Staff.sign_in(queueing_shop)
    sku = staff.new_product(price_cents=1_200, on_hand=10)
    assert asyncio.run(buy_together(queueing_shop.base_url, sku, 5)) == [201] * 5
    counted = queue_answers(queueing_shop.metrics_url)
    # One at a time: every buyer after the first queued, and every one was let in (holders
    # who came back too early were told to wait again).
    assert counted["ticketed"] >= 1
    assert counted["admitted"] == counted["ticketed"]

    with browser_page(chromium, height=1600) as (_, page, problems):
        log_in(page, queueing_shop.base_url, PASSWORD)
        panel = page.locator("#checkout-queue")
        page.wait_for_function(
            "admitted => document.querySelector("
            "'#queue-totals [data-figure=admitted] dd')?.textContent === admitted",
            arg=f"{counted['admitted']:g}",
            timeout=WAIT_MS,
        )
        assert panel.get_attribute("data-state") == "on"
        assert not page.locator("#queue-off").is_visible()
        totals = page.locator("#queue-totals")
        assert (
            totals.locator("[data-figure=ticketed] dd").inner_text() == f"{counted['ticketed']:g}"
        )
        assert totals.locator("[data-figure=held] dd").inner_text() == f"{counted['held']:g}"
        assert totals.locator("[data-figure=limit] dd").inner_text() == "1"
        assert totals.locator("[data-figure=waiting] dd").inner_text() == "0"
        # The charts: holders let in per second, places against the limit, and their waits.
        page.wait_for_function(
            "() => Number(document.querySelector('#chart-queue-admitted')"
            ".getAttribute('data-max-admitted')) > 0",
            timeout=WAIT_MS,
        )
        places = page.locator("#chart-queue-places")
        assert places.get_attribute("data-series") == "in_flight,limit"
        assert places.get_attribute("data-max-limit") == "1"
        wait = page.locator("#chart-queue-wait")
        assert wait.get_attribute("data-series") == "p50,p99"
        assert float(wait.get_attribute("data-max-p99") or 0) > 0
        assert page.locator("#queue-charts canvas").count() == 4

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "ops-checkout-queue.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"operations page screenshot: {screenshot}")
        assert problems == []
