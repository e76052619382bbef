"""Inventory's admin routes over HTTP: stock levels, warehouses and the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.principal import Principal
from colonnade.modules.inventory.api import router
from colonnade.modules.inventory.service import InventoryService
from colonnade.web import problems

CATALOG = {"MUG-RED", "TEE-L"}
TOKENS = {
    "admin": frozenset({"inventory:read", "inventory:write"}),
    "reader": frozenset({"inventory:read"}),
}


async def authenticate(token: str) -> Principal:
    if token not in TOKENS:
        raise Unauthorized("unknown token")
    return Principal(subject=token, kind="staff", scopes=TOKENS[token])


async def sku_exists(sku: str) -> bool:
    return sku in CATALOG


@pytest.fixture
def inventory(db: Database) -> InventoryService:
    return InventoryService(db, clock=SettableClock(datetime(2025, 11, 28, tzinfo=UTC)))


@pytest.fixture
async def client(inventory: InventoryService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    app.include_router(router(inventory, sku_exists))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://shop.test",
        headers={"Authorization": "Bearer admin"},
    ) as http:
        yield http


async def test_an_admin_sets_stock_and_sees_what_is_available(
    client: httpx.AsyncClient, inventory: InventoryService
) -> None:
    response = await client.put("/admin/inventory/MUG-RED", json={"on_hand": 100})
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("sku", "on_hand", "reserved", "available")} == {
        "sku": "MUG-RED",
        "on_hand": 100,
        "reserved": 0,
        "available": 100,
    }
    assert body["warehouses"] == [
        {"code": "main", "on_hand": 100, "reserved": 0, "sold": 0, "available": 100}
    ]

    await inventory.reserve("cart-1", [("MUG-RED", 4)])
    response = await client.get("/admin/inventory/MUG-RED")
    assert response.status_code == 200
    assert (response.json()["reserved"], response.json()["available"]) == (4, 96)


async def test_stock_goes_into_a_named_warehouse_once_it_exists(client: httpx.AsyncClient) -> None:
    response = await client.put("/admin/inventory/TEE-L", json={"on_hand": 3, "warehouse": "north"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_warehouse"

    response = await client.put("/admin/warehouses/north", json={"name": "North depot"})
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("code", "name")} == {
        "code": "north",
        "name": "North depot",
    }

    response = await client.put("/admin/inventory/TEE-L", json={"on_hand": 3, "warehouse": "north"})
    assert response.status_code == 200
    assert [w["code"] for w in response.json()["warehouses"]] == ["north"]


async def test_stock_for_a_sku_the_catalog_does_not_know_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.put("/admin/inventory/NOPE", json={"on_hand": 1})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_sku"
    assert "NOPE" in response.json()["detail"]
    assert (await client.get("/admin/inventory/NOPE")).json()["code"] == "unknown_sku"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"on_hand": -1}, "invalid_quantity"),
        ({"on_hand": 1.5}, "invalid_input"),
        ({"on_hand": "10"}, "invalid_input"),
        ({"on_hand": True}, "invalid_input"),
        ({"on_hand": None}, "invalid_input"),
        ({"on_hand": 10**12}, "invalid_input"),
        ({}, "invalid_input"),
        ({"on_hand": 5, "colour": "red"}, "invalid_input"),
        ({"on_hand": 5, "warehouse": 7}, "invalid_input"),
        ({"on_hand": 5, "warehouse": "no spaces"}, "invalid_warehouse"),
    ],
)
async def test_on_hand_must_be_a_plain_non_negative_integer(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    response = await client.put("/admin/inventory/MUG-RED", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert (await client.get("/admin/inventory/MUG-RED")).json()["on_hand"] == 0


async def test_stock_cannot_be_cut_below_what_buyers_hold(
    client: httpx.AsyncClient, inventory: InventoryService
) -> None:
    await client.put("/admin/inventory/MUG-RED", json={"on_hand": 5})
    await inventory.reserve("cart-1", [("MUG-RED", 4)])
    response = await client.put("/admin/inventory/MUG-RED", json={"on_hand": 3})
    assert response.status_code == 409
    assert response.json()["code"] == "stock_below_commitments"
    assert (await client.get("/admin/inventory/MUG-RED")).json()["on_hand"] == 5


async def test_the_ledger_lists_every_change_newest_first(
    client: httpx.AsyncClient, inventory: InventoryService
) -> None:
    await client.put("/admin/inventory/MUG-RED", json={"on_hand": 5})
    reservation = await inventory.reserve("cart-1", [("MUG-RED", 2)])
    response = await client.get("/admin/inventory/MUG-RED/ledger")
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [(e["reason"], e["delta_on_hand"], e["delta_reserved"]) for e in entries] == [
        ("reserve", 0, 2),
        ("set_on_hand", 5, 0),
    ]
    assert entries[0]["reference"] == reservation.id
    assert len((await client.get("/admin/inventory/MUG-RED/ledger?limit=1")).json()["entries"]) == 1
    assert (await client.get("/admin/inventory/MUG-RED/ledger?limit=0")).status_code == 422


async def test_routes_need_a_token_with_the_right_scope(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/admin/inventory/MUG-RED", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    reader = {"Authorization": "Bearer reader"}
    assert (await client.get("/admin/inventory/MUG-RED", headers=reader)).status_code == 200
    assert (await client.get("/admin/inventory/MUG-RED/ledger", headers=reader)).status_code == 200
    writes = [
        client.put("/admin/inventory/MUG-RED", json={"on_hand": 1}, headers=reader),
        client.put("/admin/warehouses/north", json={"name": "North"}, headers=reader),
    ]
    for write in writes:
        response = await write
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("body", [{"name": ""}, {"name": 5}, {}, {"name": "N", "x": 1}])
async def test_a_warehouse_needs_a_name(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.put("/admin/warehouses/north", json=body)
    assert response.status_code == 422


async def test_a_warehouse_code_must_be_a_plain_word(client: httpx.AsyncClient) -> None:
    response = await client.put("/admin/warehouses/no%20spaces", json={"name": "Spaces"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_warehouse"
