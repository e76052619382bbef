"""Identity as the assembled shop serves it: accounts, tokens and keys through create_app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.settings import Settings
from tests.integration.identity.shop import IDENTITY_TABLES, PASSWORD, bearer, login, rows
from tests.integration.storefront import client, started

SECRET = "identity-app-tests-" + "s" * 32


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with started(Settings(database_url=database_url, secret_key=SECRET)) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


async def test_the_shop_registers_logs_in_refreshes_and_keeps_customers_unreadable(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop = app.state.shop
    registered = await http.post(
        "/store/customers",
        json={"email": "marie.curie@example.com", "password": PASSWORD, "name": "Marie Curie"},
    )
    assert registered.status_code == 201
    session = (await login(http, "marie.curie@example.com")).json()
    me = await http.get("/store/customers/me", headers=bearer(session["access_token"]))
    assert me.json()["name"] == "Marie Curie"
    renewed = await http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert renewed.status_code == 200

    await shop.identity.create_staff("admin@shop.example", PASSWORD)
    admin = (await login(http, "admin@shop.example")).json()
    made = await http.post(
        "/admin/api-keys",
        json={"name": "feed", "scopes": ["apikeys:write"]},
        headers=bearer(admin["access_token"]),
    )
    listed = await http.get("/admin/api-keys", headers=bearer(made.json()["key"]))
    assert listed.status_code == 200

    dump = repr([await rows(shop.db, table) for table in IDENTITY_TABLES]).lower()
    for plain in ("marie", "curie", PASSWORD, session["refresh_token"].lower()):
        assert plain not in dump
    index = shop.keyring.blind_index("marie.curie@example.com", context="email")
    assert index in dump  # the same digest the orders module computes for this address
