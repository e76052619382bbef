"""The operations page: staff log in with its form (or bring a bearer token), the session
cookie is locked down, strangers and staff without the scope stay out, and server errors
drive the SLO alerts it shows to firing and back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.settings import Settings
from tests.integration.storefront import PASSWORD, client, open_cart, product, scrape, started

SECRET = "ops-page-tests-" + "s" * 32
OPERATOR = "operator@shop.test"
ADDRESS = {
    "name": "Ada",
    "line1": "1 Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
FAST_BURN = "ColonnadeAvailabilityFastBurn"


def settings_for(database_url: str, **extra: object) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with started(settings_for(database_url)) as app:
        await app.state.shop.identity.create_staff(OPERATOR, PASSWORD, roles=["operator"])
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


async def log_in(
    http: httpx.AsyncClient, email: str, password: str, **headers: str
) -> httpx.Response:
    return await http.post(
        "/ops/login", data={"email": email, "password": password}, headers=headers
    )


async def test_staff_log_in_with_the_form_and_see_the_page_and_its_data(
    http: httpx.AsyncClient,
) -> None:
    logged_in = await log_in(http, OPERATOR, PASSWORD, origin="http://shop.test")

    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/ops"
    cookie = logged_in.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ops" in cookie
    assert "max-age=" in cookie
    assert "secure" not in cookie  # plain HTTP here; see the https test below
    page = await http.get("/ops")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/ops/static/uPlot.iife.min.js"' in page.text
    assert f'data-alert="{FAST_BURN}"' in page.text
    data = await http.get("/ops/data")
    assert data.status_code == 200
    assert FAST_BURN in {alert["alert"] for alert in data.json()["alerts"]}
    assert data.headers["cache-control"] == "private, no-store"


async def test_the_session_cookie_is_secure_when_the_shop_is_behind_https(
    database_url: str,
) -> None:
    async with started(settings_for(database_url, behind_https=True)) as app, client(app) as http:
        await app.state.shop.identity.create_staff(OPERATOR, PASSWORD, roles=["operator"])
        logged_in = await log_in(http, OPERATOR, PASSWORD)

    assert logged_in.status_code == 303
    assert "secure" in logged_in.headers["set-cookie"].lower()


async def test_a_wrong_password_shows_an_error_and_opens_no_session(
    http: httpx.AsyncClient,
) -> None:
    refused = await log_in(http, OPERATOR, "not the right password")

    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers
    assert 'class="error"' in refused.text
    assert "password is wrong" in refused.text
    assert (await http.get("/ops")).headers["location"] == "/ops/login"
    assert (await http.get("/ops/data")).status_code == 401


@pytest.mark.parametrize(
    "where_from",
    [
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": "null"},
        {"sec-fetch-site": "same-site", "origin": "https://blog.shop.test"},
    ],
)
async def test_a_form_posted_from_another_site_is_refused(
    http: httpx.AsyncClient, where_from: dict[str, str]
) -> None:
    refused = await log_in(http, OPERATOR, PASSWORD, **where_from)

    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    assert (await http.get("/ops")).status_code == 303


async def test_staff_without_the_ops_scope_and_customers_stay_out(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await app.state.shop.identity.create_staff("stock@shop.test", PASSWORD, roles=["warehouse"])
    await app.state.shop.identity.register_customer("ada@shop.test", PASSWORD, "Ada")

    for email in ("stock@shop.test", "ada@shop.test"):
        refused = await log_in(http, email, PASSWORD)
        assert refused.status_code == 403, email
        assert "set-cookie" not in refused.headers
        assert "may not see the operations page" in refused.text


async def test_a_staff_bearer_token_reads_the_data_and_an_unscoped_one_does_not(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await app.state.shop.identity.create_staff("stock@shop.test", PASSWORD, roles=["warehouse"])

    async def bearer(email: str) -> dict[str, str]:
        token = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    allowed = await http.get("/ops/data", headers=await bearer(OPERATOR))
    refused = await http.get("/ops/data", headers=await bearer("stock@shop.test"))

    assert allowed.status_code == 200
    assert allowed.json()["objectives"][0]["target"] == 0.999
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"


async def test_logging_out_ends_the_session_in_the_browser(http: httpx.AsyncClient) -> None:
    await log_in(http, OPERATOR, PASSWORD)
    assert (await http.get("/ops")).status_code == 200

    logged_out = await http.post("/ops/logout", headers={"origin": "http://shop.test"})

    assert logged_out.status_code == 303
    assert logged_out.headers["location"] == "/ops/login"
    assert (await http.get("/ops")).status_code == 303
    assert (await http.get("/ops/data")).status_code == 401


async def test_the_page_ships_its_charting_library(http: httpx.AsyncClient) -> None:
    script = await http.get("/ops/static/uPlot.iife.min.js")
    licence = await http.get("/ops/static/uPlot.LICENSE")

    assert script.status_code == 200
    assert "uPlot" in script.text
    assert "MIT License" in licence.text


async def failing_checkout(http: httpx.AsyncClient, sku: str) -> int:
    cart_id = await open_cart(http, sku)
    answer = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json={
            "email": "ada@example.com",
            "shipping_address": ADDRESS,
            "payment": {"method": "card", "token": "tok_captureFails"},
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return answer.status_code


async def alert_firing(http: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    alerts = (await http.get("/ops/data", headers=headers)).json()["alerts"]
    return next(a["firing"] for a in alerts if a["alert"] == FAST_BURN)


async def firing_gauge() -> str:
    metrics = await scrape()
    return next(
        line.split()[-1]
        for line in metrics.splitlines()
        if line.startswith(f'colonnade_alerts_firing{{alert="{FAST_BURN}"}}')
    )


async def test_server_errors_drive_the_availability_alert_to_firing_and_back(
    database_url: str,
) -> None:
    # An hour becomes 2 s and five minutes 0.17 s; the shop samples every 0.2 s.
    settings = settings_for(database_url, ops_sample_seconds=0.2, slo_window_scale=1 / 1800)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        shop = app.state.shop
        await shop.identity.create_staff(OPERATOR, PASSWORD, roles=["operator"])
        token = await http.post("/auth/token", data={"username": OPERATOR, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        sku = await product(shop, on_hand=1000)
        assert not await alert_firing(http, headers)

        deadline = time.monotonic() + 90
        statuses = set()
        # The page and the metrics say so alike (the short window ends it soon after the errors).
        while not (await alert_firing(http, headers) and await firing_gauge() == "1.0"):
            assert time.monotonic() < deadline, "the alert never fired"
            statuses.add(await failing_checkout(http, sku))
        assert statuses == {503}

        deadline = time.monotonic() + 90
        while await alert_firing(http, headers):
            assert time.monotonic() < deadline, "the alert never stopped firing"
            await http.get("/health/live")
            await asyncio.sleep(0.05)
        assert await firing_gauge() == "0.0"
