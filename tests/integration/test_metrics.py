"""What an operator reads on the metrics port and in the logs moves when the shop does
something: the whole app on both databases, driven over HTTP like a shopper would.

The metrics registry is one per process and shared by every test, so each test compares
values before and after what it does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from colonnade import migrations
from colonnade.app import Shop, assemble
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES
from tests.conftest import POSTGRES_ADMIN_DSN, PostgresServer, sqlalchemy_url
from tests.integration.storefront import (
    SECRET,
    check_out,
    checkout_body,
    client,
    open_cart,
    product,
    scrape,
    started,
)

ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}


def value(name: str, **labels: str) -> float:
    """A sample's value now; a series not yet seen counts as 0."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Deltas:
    """How much each named sample moved since this was made."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self._before = {self._key(n, lb): value(n, **lb) for n, lb in samples}

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> str:
        return name + json.dumps(labels, sort_keys=True)

    def __call__(self, name: str, **labels: str) -> float:
        return value(name, **labels) - self._before[self._key(name, labels)]


def sample(name: str, **labels: str) -> tuple[str, dict[str, str]]:
    return name, labels


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=database_url, secret_key=SECRET, max_body_bytes=2048)
    async with started(settings, us_tax=Decimal("0.1")) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- the shop's business -----------------------------------------------------------------


async def test_a_guest_purchase_counts_a_cart_a_paid_checkout_an_order_and_its_revenue(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    sku = await product(shop, price=1250, on_hand=5)
    moved = Deltas(
        sample("colonnade_carts_created_total"),
        sample("colonnade_checkouts_total", outcome="paid"),
        sample("colonnade_orders_placed_total"),
        sample("colonnade_revenue_total", currency="USD"),
    )

    cart_id = await open_cart(http, sku)
    key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    bought = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body("ada@example.com", ADDRESS),
        headers=key,
    )
    assert bought.status_code == 201, bought.text
    total = bought.json()["total"]
    # The client retries (its connection dropped): the same answer, nothing counted again.
    again = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body("ada@example.com", ADDRESS),
        headers=key,
    )
    assert again.json()["id"] == bought.json()["id"]

    assert moved("colonnade_carts_created_total") == 1
    assert moved("colonnade_checkouts_total", outcome="paid") == 1
    assert moved("colonnade_orders_placed_total") == 1
    assert total["currency"] == "USD"
    assert moved("colonnade_revenue_total", currency="USD") == pytest.approx(total["amount"] / 100)


async def test_the_last_unit_sold_is_a_stockout_and_the_next_buyer_an_out_of_stock_checkout(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    sku = await product(shop, on_hand=1)
    first, second = await open_cart(http, sku), await open_cart(http, sku)
    moved = Deltas(
        sample("colonnade_checkouts_total", outcome="out_of_stock"),
        sample("colonnade_stockouts_total"),
    )

    assert (await check_out(http, first, "ada@example.com", ADDRESS)).status_code == 201
    # The last unit sold: the SKU reached 0 available.
    assert moved("colonnade_stockouts_total") == 1
    refused = await check_out(http, second, "bob@example.com", ADDRESS)

    assert (refused.status_code, refused.json()["code"]) == (409, "out_of_stock")
    assert moved("colonnade_checkouts_total", outcome="out_of_stock") == 1
    # One SKU ran out once, however many buyers it turns away.
    assert moved("colonnade_stockouts_total") == 1


async def test_a_declined_card_counts_a_declined_checkout_with_its_reason(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    cart_id = await open_cart(http, await product(shop))
    moved = Deltas(
        sample("colonnade_checkouts_total", outcome="payment_declined"),
        sample("colonnade_checkouts_total", outcome="paid"),
        sample("colonnade_payment_declines_total", reason="card_declined"),
        sample("colonnade_orders_placed_total"),
    )
    body = checkout_body("ada@example.com", ADDRESS)
    body["payment"]["token"] = "tok_chargeDeclined"

    declined = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=body,
        headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )

    assert (declined.status_code, declined.json()["code"]) == (402, "payment_declined")
    assert moved("colonnade_checkouts_total", outcome="payment_declined") == 1
    assert moved("colonnade_payment_declines_total", reason="card_declined") == 1
    assert moved("colonnade_checkouts_total", outcome="paid") == 0
    assert moved("colonnade_orders_placed_total") == 0


async def test_an_expired_reservation_is_counted_when_the_expiry_job_releases_it(
    database_url: str,
) -> None:
    clock = SettableClock(datetime.now(UTC))
    shop = assemble(Settings(database_url=database_url, reservation_ttl_seconds=60), clock=clock)
    try:
        await migrations.upgrade(shop.db, MODULES)
        await shop.keyring.load()
        sku = await product(shop, on_hand=2)
        await shop.inventory.reserve("abandoned-checkout", [(sku, 2)])
        moved = Deltas(sample("colonnade_reservations_expired_total"))
        expire = next(job for job in shop.maintenance.jobs if job.name == "expire-reservations")

        assert await expire.run() == 0
        assert moved("colonnade_reservations_expired_total") == 0
        clock.advance(timedelta(seconds=61))
        assert await expire.run() == 1

        assert moved("colonnade_reservations_expired_total") == 1
        assert (await shop.inventory.stock(sku)).available == 2
    finally:
        await shop.db.dispose()


# --- events ------------------------------------------------------------------------------


async def test_the_outbox_backlog_grows_while_the_relay_is_stopped_and_empties_when_it_runs(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    sku = await product(shop)
    await shop.relay.stop()
    moved = Deltas(sample("colonnade_outbox_published_total"))

    assert (await check_out(http, await open_cart(http, sku), "a@example.com", ADDRESS)).is_success
    await shop.relay.report_backlog()
    waiting = value("colonnade_outbox_backlog")
    assert waiting >= 1
    assert value("colonnade_outbox_lag_seconds") > 0

    shop.relay.start()
    await eventually(lambda: moved("colonnade_outbox_published_total") >= waiting)
    await shop.relay.report_backlog()
    assert value("colonnade_outbox_backlog") == 0
    assert value("colonnade_outbox_lag_seconds") == 0


async def test_a_consumer_counts_what_it_handled_and_how_late(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    consumer = "checkout.settle-cancellation"
    moved = Deltas(
        sample("colonnade_events_consumed_total", consumer=consumer, outcome="ok"),
        sample("colonnade_consumer_lag_seconds_count", consumer=consumer),
    )
    # Staff cancel a paid order; its OrderCancelled event reaches the consumer.
    paid = await http.post(
        f"/store/carts/{await open_cart(http, await product(shop))}/checkout",
        json=checkout_body("ada@example.com", ADDRESS),
        headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )
    assert paid.status_code == 201, paid.text
    await shop.orders.cancel(paid.json()["id"], actor="staff", reason="changed their mind")

    await eventually(
        lambda: moved("colonnade_events_consumed_total", consumer=consumer, outcome="ok") >= 1
    )
    assert moved("colonnade_consumer_lag_seconds_count", consumer=consumer) >= 1


# --- HTTP and the database ---------------------------------------------------------------


async def test_requests_are_counted_by_route_template_and_status(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    cart_route = "/store/carts/{cart_id}"
    moved = Deltas(
        sample("colonnade_http_requests_total", method="GET", route=cart_route, status="200"),
        sample("colonnade_http_requests_total", method="GET", route=cart_route, status="404"),
        sample(
            "colonnade_http_request_duration_seconds_count",
            method="GET",
            route=cart_route,
            status="200",
        ),
        sample("colonnade_http_requests_total", method="GET", route="unmatched", status="404"),
        sample("colonnade_http_requests_total", method="POST", route="/store/carts", status="413"),
        sample("colonnade_http_requests_in_flight"),
    )
    cart_id = await open_cart(http, await product(app.state.shop))

    assert (await http.get(f"/store/carts/{cart_id}")).status_code == 200
    assert (await http.get(f"/store/carts/{uuid.uuid4()}")).status_code == 404
    assert (await http.get("/no/such/page")).status_code == 404
    # Refused by the body size limit before any route runs, and still counted for its route.
    too_large = await http.post("/store/carts", json={"market": "US", "note": "x" * 4096})
    assert too_large.status_code == 413

    assert moved("colonnade_http_requests_total", method="GET", route=cart_route, status="200") == 1
    assert moved("colonnade_http_requests_total", method="GET", route=cart_route, status="404") == 1
    assert (
        moved(
            "colonnade_http_request_duration_seconds_count",
            method="GET",
            route=cart_route,
            status="200",
        )
        == 1
    )
    assert (
        moved("colonnade_http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    assert (
        moved("colonnade_http_requests_total", method="POST", route="/store/carts", status="413")
        == 1
    )
    assert moved("colonnade_http_requests_in_flight") == 0
    # What Prometheus scrapes names the template, never a cart's id.
    scraped = await scrape()
    assert f'route="{cart_route}"' in scraped
    assert cart_id not in scraped


async def test_database_statements_are_timed_and_pool_connections_come_back(
    database_url: str,
) -> None:
    pool = "colonnade_db_pool_connections"
    moved = Deltas(
        sample("colonnade_db_query_duration_seconds_count", operation="insert"),
        sample("colonnade_db_query_duration_seconds_count", operation="select"),
        sample(pool, state="in_use"),
        sample(pool, state="idle"),
    )
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        await open_cart(http, await product(app.state.shop))
        assert moved("colonnade_db_query_duration_seconds_count", operation="insert") >= 1
        assert moved("colonnade_db_query_duration_seconds_count", operation="select") >= 1
        # The pool keeps what it opened for the next request.
        assert moved(pool, state="idle") >= 1
        assert value("colonnade_db_pool_size") >= 1
    # Stopped: every connection was given back, then closed.
    assert moved(pool, state="in_use") == 0
    assert moved(pool, state="idle") == 0


async def test_a_database_gone_away_leaves_the_pools_gauges_where_they_were(
    postgres: PostgresServer,
) -> None:
    """The pool checks in a connection it failed to open again (the database was dropped
    under it): that is no connection given back, and the gauges must not count one."""
    pool = "colonnade_db_pool_connections"
    moved = Deltas(sample(pool, state="in_use"), sample(pool, state="idle"))
    name = f"colonnade_gone_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(sqlalchemy_url(POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name))
    try:
        async with db.reading() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert (moved(pool, state="in_use"), moved(pool, state="idle")) == (0, 1)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for _ in range(3):
            with pytest.raises(DBAPIError):
                async with db.reading() as conn:
                    await conn.scalar(text("SELECT 1"))
        assert (moved(pool, state="in_use"), moved(pool, state="idle")) == (0, 0)
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- request ids and logs ----------------------------------------------------------------


async def test_a_request_id_is_kept_or_made_and_returned(http: httpx.AsyncClient) -> None:
    given = await http.get("/health/live", headers={"X-Request-ID": "edge-7f3a:42"})
    assert given.headers["X-Request-ID"] == "edge-7f3a:42"

    made = await http.get("/health/live")
    other = await http.get("/health/live")
    assert len(made.headers["X-Request-ID"]) >= 16
    assert made.headers["X-Request-ID"] != other.headers["X-Request-ID"]

    # Too long, or with characters that could forge a log line: replaced, not echoed.
    for insane in ("x" * 500, 'a"b', "a b"):
        replaced = await http.get("/health/live", headers={"X-Request-ID": insane})
        assert replaced.headers["X-Request-ID"] != insane


async def test_every_log_line_of_a_request_carries_its_request_id(
    app: FastAPI, http: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    log = structlog.get_logger("test")

    async def noisy() -> dict[str, str]:
        log.info("test.inside_a_request")
        return {"status": "ok"}

    async def broken() -> dict[str, str]:
        raise RuntimeError("a bug")

    app.add_api_route("/test/noisy/{n}", noisy)
    app.add_api_route("/test/broken", broken)
    capsys.readouterr()

    answered = await http.get("/test/noisy/1", headers={"X-Request-ID": "req-noisy-1"})
    # As a server would: the failure is answered, not raised into the client.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as server:
        failed = await server.get("/test/broken", headers={"X-Request-ID": "req-broken-1"})

    assert answered.status_code == 200
    assert failed.status_code == 500
    lines = log_lines(capsys.readouterr().out)
    inside = next(line for line in lines if line["event"] == "test.inside_a_request")
    assert inside["request_id"] == "req-noisy-1"
    access = next(
        line
        for line in lines
        if line["event"] == "http.request" and line["route"] != "/test/broken"
    )
    assert access["request_id"] == "req-noisy-1"
    assert (access["method"], access["route"], access["status"], access["level"]) == (
        "GET",
        "/test/noisy/{n}",
        200,
        "info",
    )
    assert access["duration_ms"] >= 0
    # A bug answers 500; its report and its access line say which request it was.
    crash = next(line for line in lines if line["event"] == "request.failed")
    assert crash["request_id"] == "req-broken-1"
    broken_access = next(
        line
        for line in lines
        if line["event"] == "http.request" and line["route"] == "/test/broken"
    )
    assert (broken_access["status"], broken_access["request_id"]) == (500, "req-broken-1")
