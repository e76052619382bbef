"""The operations page in a real browser (Debian's chromium, headless): a staff member logs
in through the form, guests buy over HTTP, and the page's charts and totals show the
purchases. A screenshot is kept under tests/artifacts/.

Locally the test skips when chromium is missing; with COLONNADE_REQUIRE_BROWSER=1 (CI) it
fails instead. scripts/setup.sh installs chromium where it can."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.e2e.buyers import checkout_body
from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop
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

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / f"ops-{request.node.callspec.id}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"operations page screenshot: {screenshot}")
        assert problems == []
