"""Compliance through the assembled shop on both databases: what the audit middleware
records, a customer's data exported, erased everywhere, and guest data retention."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect, text

from colonnade.app import Shop, assemble
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from colonnade.modules.checkout.service import CheckoutRequest
from tests.conftest import count_rows
from tests.integration.storefront import client, started

SECRET = "compliance-tests-" + "s" * 32
PASSWORD = "a long and secret password"
EMAIL = "grace.erasable@example.com"
NAME = "Grace Erasable-Hopper"
STREET = "42 Erasable Lane"
PHONE = "+1 555 0199 777"
ADDRESS = {
    "name": NAME,
    "line1": STREET,
    "city": "Arlington",
    "postal_code": "22201",
    "country": "US",
    "phone": PHONE,
}
PERSONAL = (EMAIL, NAME, STREET, PHONE)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.10")) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app, "203.0.113.9") as http:
        yield http


@pytest.fixture
async def admin(app: FastAPI, http: httpx.AsyncClient) -> dict[str, str]:
    await app.state.shop.identity.create_staff("admin@shop.test", PASSWORD)
    return await token_of(http, "admin@shop.test")


async def token_of(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def product(shop: Shop, on_hand: int = 10) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    await shop.catalog.create_product(
        NewProduct(titles={"en-US": "Mug"}, default_locale="en-US", variants=[NewVariant(sku=sku)])
    )
    await shop.pricing.set_prices(sku, [Money(1000, "USD")])
    await shop.inventory.set_on_hand(sku, on_hand)
    return sku


async def customer_with_an_order(
    app: FastAPI, http: httpx.AsyncClient
) -> tuple[str, dict[str, str], str]:
    """A registered customer who bought one thing: (customer id, their token, the sku)."""
    registered = await http.post(
        "/store/customers", json={"email": EMAIL, "password": PASSWORD, "name": NAME}
    )
    assert registered.status_code == 201, registered.text
    token = await token_of(http, EMAIL)
    consent = await http.put(
        "/store/customers/me/consents/marketing_email", json={"granted": True}, headers=token
    )
    assert consent.status_code == 200, consent.text
    sku = await product(app.state.shop)
    cart = (await http.post("/store/carts", json={"market": "US"}, headers=token)).json()
    added = await http.post(
        f"/store/carts/{cart['id']}/lines", json={"sku": sku, "quantity": 2}, headers=token
    )
    assert added.status_code == 200, added.text
    bought = await http.post(
        f"/store/carts/{cart['id']}/checkout",
        json={
            "email": EMAIL,
            "shipping_address": ADDRESS,
            "payment": {"method": "card", "token": "tok_visa"},
        },
        headers={**token, "Idempotency-Key": f"buy-{uuid.uuid4().hex}"},
    )
    assert bought.status_code == 201, bought.text
    return registered.json()["id"], token, sku


async def audit(http: httpx.AsyncClient, admin: dict[str, str], **query: Any) -> list[Any]:
    response = await http.get("/admin/audit", params=query, headers=admin)
    assert response.status_code == 200, response.text
    entries: list[Any] = response.json()["entries"]
    return entries


async def every_stored_value(db: Database) -> list[str]:
    """Every value of every column of every table, as text."""
    async with db.reading() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        values: list[str] = []
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
            values += [str(value) for row in result for value in row]
    return values


async def test_staff_changes_and_refusals_are_recorded_with_secrets_removed(
    app: FastAPI, http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    sku = await product(app.state.shop)
    await app.state.shop.identity.create_staff("nobody@shop.test", PASSWORD, scopes=frozenset())
    nobody = await token_of(http, "nobody@shop.test")

    stocked = await http.put(f"/admin/inventory/{sku}", json={"on_hand": 7}, headers=admin)
    hired = await http.post(
        "/admin/staff",
        json={
            "email": "clerk@shop.test",
            "password": PASSWORD,
            "name": "Clerk",
            "roles": ["support"],
        },
        headers=admin,
    )
    refused = await http.put(f"/admin/inventory/{sku}", json={"on_hand": 0}, headers=nobody)
    await http.get("/admin/orders", headers=admin)
    await http.post("/store/carts", json={"market": "US"})

    assert (stocked.status_code, hired.status_code, refused.status_code) == (200, 201, 403)
    entries = await audit(http, admin)
    assert [(e["action"], e["status"]) for e in entries] == [
        ("PUT /admin/inventory/{sku}", 403),
        ("POST /admin/staff", 201),
        ("PUT /admin/inventory/{sku}", 200),
    ]
    refusal, hiring, stocking = entries
    assert (stocking["target"], stocking["after"], stocking["actor_kind"]) == (
        {"sku": sku},
        {"on_hand": 7},
        "staff",
    )
    assert stocking["client_address"] == "203.0.113.9"
    assert hiring["after"]["password"] == "[removed]"
    assert hiring["after"]["email"] == "clerk@shop.test"
    assert refusal["actor_id"] != stocking["actor_id"]
    assert (await app.state.shop.inventory.stock(sku)).on_hand == 7
    assert (await app.state.shop.compliance.audit.verify()).intact


async def test_reading_the_audit_log_needs_its_scope_and_filters_by_actor_and_action(
    app: FastAPI, http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    sku = await product(app.state.shop)
    await app.state.shop.identity.create_staff("nobody@shop.test", PASSWORD, scopes=frozenset())
    nobody = await token_of(http, "nobody@shop.test")
    await http.put(f"/admin/inventory/{sku}", json={"on_hand": 3}, headers=admin)
    await http.put(f"/admin/inventory/{sku}", json={"on_hand": 4}, headers=nobody)
    admin_id = (await audit(http, admin))[-1]["actor_id"]

    forbidden = await http.get("/admin/audit", headers=nobody)
    by_admin = await audit(http, admin, actor=admin_id)
    by_action = await audit(http, admin, action="PUT /admin/inventory/{sku}", limit=1)

    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    assert [e["after"] for e in by_admin] == [{"on_hand": 3}]
    assert [e["status"] for e in by_action] == [403]


async def test_a_customer_and_staff_export_everything_kept_about_the_customer(
    app: FastAPI, http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id, token, _ = await customer_with_an_order(app, http)

    by_staff = await http.get(f"/admin/customers/{customer_id}/export", headers=admin)
    by_customer = await http.get("/store/customers/me/export", headers=token)
    unknown = await http.get(f"/admin/customers/{uuid.uuid4()}/export", headers=admin)
    not_staff = await http.get(f"/admin/customers/{customer_id}/export", headers=token)

    assert (by_staff.status_code, by_customer.status_code) == (200, 200)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "customer_not_found")
    assert not_staff.status_code == 403
    export = by_customer.json()
    assert export["customer_id"] == customer_id
    assert (export["profile"]["email"], export["profile"]["name"]) == (EMAIL, NAME)
    assert {c["purpose"]: c["granted"] for c in export["profile"]["consents"]}[
        "marketing_email"
    ] is True
    assert len(export["orders"]) == 1
    assert STREET in str(export["orders"][0])
    # The staff member's look at the customer's data is part of what the customer sees.
    assert [(e["action"], e["actor_kind"]) for e in export["audit_entries"]] == [
        ("GET /admin/customers/{customer_id}/export", "staff")
    ]
    recorded = [
        (e["action"], e["status"], e["subject_customer_id"]) for e in await audit(http, admin)
    ]
    unknown_id = unknown.request.url.path.split("/")[3]
    assert recorded == [
        ("GET /admin/customers/{customer_id}/export", 403, customer_id),
        ("GET /admin/customers/{customer_id}/export", 404, unknown_id),
        ("GET /store/customers/me/export", 200, customer_id),
        ("GET /admin/customers/{customer_id}/export", 200, customer_id),
    ]


@pytest.mark.parametrize("erased_by", ["customer", "staff"])
async def test_erasure_forgets_the_customer_everywhere_and_keeps_the_books(
    app: FastAPI, http: httpx.AsyncClient, admin: dict[str, str], database_url: str, erased_by: str
) -> None:
    shop: Shop = app.state.shop
    customer_id, token, sku = await customer_with_an_order(app, http)
    await http.get(f"/admin/customers/{customer_id}/export", headers=admin)
    await http.get("/store/customers/me/export", headers=token)
    stock_before = await shop.inventory.stock(sku)
    orders_before = await count_rows(shop.db, "orders_orders")

    if erased_by == "customer":
        erased = await http.delete("/store/customers/me", headers=token)
    else:
        erased = await http.delete(f"/admin/customers/{customer_id}", headers=admin)
    again = await http.delete(f"/admin/customers/{customer_id}", headers=admin)

    assert (erased.status_code, again.status_code) == (204, 204)
    login = await http.post("/auth/token", data={"username": EMAIL, "password": PASSWORD})
    assert login.status_code == 401
    assert (await http.get(f"/admin/customers/{customer_id}/export", headers=admin)).json()[
        "code"
    ] == "customer_not_found"
    # The books stay: the order, its amounts, the stock it sold.
    assert await count_rows(shop.db, "orders_orders") == orders_before
    assert await shop.inventory.stock(sku) == stock_before
    # One erasure record, naming who asked, and an event with ids only.
    records = await shop.compliance.erasures(customer_id)
    assert len(records) == 1
    assert records[0].requested_by_kind == erased_by
    async with shop.db.reading() as conn:
        events = (
            await conn.execute(
                text("SELECT payload FROM kernel_outbox WHERE event_type = :t"),
                {"t": "compliance.CustomerDataErased"},
            )
        ).all()
    assert len(events) == 1
    payload = events[0].payload
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload == {"customer_id": customer_id, "erasure_id": records[0].id}
    # What the audit log knew about the customer is gone, and the chain still holds.
    about = await shop.compliance.audit.entries_about(customer_id)
    assert about
    erasure_seq = next(e.seq for e in about if e.action.startswith("DELETE"))
    assert all(e.erased for e in about if e.seq <= erasure_seq)
    # Asked about later, the erased customer is only an id.
    assert all((e.before, e.after) == (None, None) for e in about if e.seq > erasure_seq)
    assert {e.client_address for e in about if e.actor_kind == "customer"} == {None}
    assert (await shop.compliance.audit.verify()).intact
    # Nothing personal is left anywhere in the database, nor in the SQLite file's bytes.
    stored = "\n".join(await every_stored_value(shop.db))
    assert [p for p in PERSONAL if p in stored] == []
    if shop.db.is_sqlite:
        path = Path(database_url.split(":///", 1)[1])
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                raw = file.read_bytes()
                assert [p for p in PERSONAL if p.encode() in raw] == [], file.name


async def test_erasing_an_unknown_customer_is_not_found_and_needs_the_scope(
    app: FastAPI, http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id, token, _ = await customer_with_an_order(app, http)
    await app.state.shop.identity.create_staff("support@shop.test", PASSWORD, roles=["support"])
    support = await token_of(http, "support@shop.test")

    unknown = await http.delete(f"/admin/customers/{uuid.uuid4()}", headers=admin)
    forbidden = await http.delete(f"/admin/customers/{customer_id}", headers=support)

    assert (unknown.status_code, unknown.json()["code"]) == (404, "customer_not_found")
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    assert (await http.get("/store/customers/me", headers=token)).status_code == 200
    assert await app.state.shop.compliance.erasures(customer_id) == []
    statuses = [(e["action"], e["status"]) for e in await audit(http, admin)]
    assert ("DELETE /admin/customers/{customer_id}", 403) in statuses
    assert ("DELETE /admin/customers/{customer_id}", 404) in statuses


async def test_guest_orders_lose_their_personal_data_after_the_retention_period(
    database_url: str,
) -> None:
    clock = SettableClock(datetime.now(UTC))
    shop = assemble(Settings(database_url=database_url, guest_data_retention_days=30), clock=clock)
    try:
        await shop.keyring.load()
        await shop.pricing.set_market("US", "United States", "USD", "en-US", False, Decimal("0.10"))
        sku = await product(shop)
        cart = await shop.carts.create("US")
        await shop.carts.add_line(cart.id, sku, 1)
        outcome = await shop.checkout.check_out(
            cart.id,
            "guest-key-0001",
            CheckoutRequest(
                email=EMAIL,
                shipping_address=ADDRESS,
                payment_method="card",
                payment_token="tok_visa",
            ),
        )
        assert outcome.status == 201
        job = next(j for j in shop.maintenance.jobs if j.name == "erase-guest-data")

        clock.advance(timedelta(days=29))
        kept = await job.run()
        clock.advance(timedelta(days=2))
        erased = await job.run()

        assert (kept, erased) == (0, 1)
        order = await shop.orders.order(outcome.body["id"])
        assert order.total == Money(1100, "USD")
        stored = "\n".join(await every_stored_value(shop.db))
        assert [p for p in PERSONAL if p in stored] == []
    finally:
        await shop.db.dispose()
