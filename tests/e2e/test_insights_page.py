"""The insights page in a real browser (Debian's chromium, headless): guests buy over HTTP,
and a finance clerk who logs in sees the paid orders, their revenue, the products bought and
the charts (orders per market hour by hour among them), all as the insights API reports
them. A screenshot is kept under tests/artifacts/.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningShop
from tests.e2e.staff import Staff
from tests.e2e.test_ops_page import (  # noqa: F401 - chromium is a fixture
    ARTIFACTS,
    WAIT_MS,
    browser_page,
    buy,
    chromium,
    log_in,
)

CLERK = "clerk@demo.example"
CLERK_PASSWORD = "the clerk's long password"


def once_counted(staff: Staff, route: str, key: str, count: int) -> dict[str, Any]:
    """An insight of yesterday to tomorrow (a run across midnight counts too), once its `key`
    counts `count` (its length, for a list) (the events take a moment)."""
    today = datetime.now(UTC).date()
    window = {
        "from": f"{today - timedelta(days=1)}T00:00:00Z",
        "to": f"{today + timedelta(days=2)}T00:00:00Z",
    }
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Any] = staff.call("GET", f"/admin/insights/{route}", params=window)
        counted = len(found[key]) if isinstance(found[key], list) else found[key]
        if counted == count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_finance_clerk_sees_what_sold_today(
    shop: RunningShop,
    chromium: Path,  # noqa: F811 - the fixture
    request: pytest.FixtureRequest,
) -> None:
    staff = Staff.sign_in(shop)
    staff.call(
        "POST",
        "/admin/staff",
        json={"email": CLERK, "password": CLERK_PASSWORD, "name": "Clerk", "roles": ["finance"]},
    )
    category = f"gifts-{uuid.uuid4().hex[:8]}"
    staff.call("PUT", f"/admin/categories/{category}", json={"names": {"en-US": "Gifts"}})
    sku = staff.new_product(price_cents=1_500, on_hand=5, category=category)
    assert [buy(shop.base_url, sku) for _ in range(3)] == [201, 201, 201]
    assert buy(shop.base_url, sku, "tok_chargeDeclined") == 402
    sales = once_counted(staff, "sales", "orders", 3)
    assert sales["orders"] == 3
    assert once_counted(staff, "declines", "declined", 1)["declined"] == 1
    (revenue,) = sales["revenue"]

    with browser_page(chromium, height=1100) as (_, page, problems):
        log_in(page, shop.base_url, CLERK_PASSWORD, email=CLERK, path="/ops/insights")
        # A clerk may read insights but not watch operations: the login leads here.
        assert page.url == shop.base_url + "/ops/insights"
        page.goto(shop.base_url + "/ops")
        assert page.url == shop.base_url + "/ops/insights"

        assert page.inner_text("#orders") == "3"
        shown = page.inner_text("#revenue li[data-currency=USD]")
        assert shown == f"${revenue['amount'] / 100:,.2f}"
        row = page.locator("#product-rows tr", has_text=sku)
        # What the lines cost: the US adds its tax on top, so the lines hold none of it.
        assert row.locator("td").all_inner_texts() == [sku, "3", "$45.00"]
        in_category = page.locator("#category-rows tr", has_text=category)
        assert in_category.locator("td").all_inner_texts() == [category, "3", "$45.00"]
        funnel = page.locator("#funnel-rows tr[data-market=US] td").all_inner_texts()
        assert funnel == ["US", "4", "4", "3", "75.0%", "payment_declined 1"]
        assert page.inner_text("#declined") == "1"
        assert page.inner_text("#asked") == "4"
        declines = page.locator("#decline-rows tr").first.locator("td").all_inner_texts()
        assert declines == ["card_declined", "1", "25.0%"]
        assert "Too little history" in page.inner_text("#forecast-rows"), "one day of orders"
        buyers = page.locator("#customer-rows tr[data-market=US] td").all_inner_texts()
        assert buyers == ["US", "0", "0", "0", "3"], "three guests bought"
        page.wait_for_function(
            "() => document.querySelector('#chart-orders').dataset.points === '7'",
            timeout=WAIT_MS,
        )
        assert page.locator("#chart-orders").get_attribute("data-max-orders") == "3"
        assert page.locator("#chart-revenue").get_attribute("data-series") == "USD"
        assert page.locator("#chart-revenue canvas").count() == 1
        # The week hour by hour: the three orders in the US's line.
        assert page.locator("#chart-markets").get_attribute("data-points") == "168"
        assert page.locator("#chart-markets").get_attribute("data-total-us") == "3"
        machinery = page.locator("#chart-machinery").get_attribute("data-series")
        assert machinery == "checkout p99 ms,outbox lag s"

        # The last unit of another product sells: it shows as sold out, still.
        scarce = staff.new_product(price_cents=700, on_hand=1)
        assert buy(shop.base_url, scarce) == 201
        assert len(once_counted(staff, "stock-outs", "stock_outs", 1)["stock_outs"]) == 1
        page.goto(shop.base_url + "/ops/insights")
        out = page.locator(f"#stock-out-rows tr[data-sku={scarce}] td").all_inner_texts()
        assert [out[0], out[2]] == [scarce, "still out"]

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / f"insights-{request.node.callspec.id}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"insights page screenshot: {screenshot}")

        # A window that ends before it starts is refused on the page, with its reason.
        refused = page.goto(shop.base_url + "/ops/insights?from=2026-11-28&to=2026-11-20")
        assert refused is not None
        assert refused.status == 422
        assert "after" in page.inner_text("[role=alert]")
        assert problems == []


def test_the_page_answers_only_with_a_session_that_may_read_insights(shop: RunningShop) -> None:
    with httpx.Client(base_url=shop.base_url, follow_redirects=False) as http:
        anonymous = http.get("/ops/insights")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ops/login"
