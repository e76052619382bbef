"""Every operation in the OpenAPI is either deliberately public or protected, and protected
ones enforce it: 401 without a token or with a bad one, 403 with a token that lacks the scope.

A new route that forgets its protection fails here, and so does a public route nobody put on
the list below on purpose."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.principal import Principal
from colonnade.kernel.settings import Settings
from tests.integration.storefront import client, started

# Open to anyone, each for a reason. Guests browse, buy and read their order with its secret.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/health/live"): "probes",
    ("GET", "/health/ready"): "probes",
    ("POST", "/auth/token"): "logging in",
    ("POST", "/auth/logout"): "holding the refresh token is the proof",
    ("POST", "/store/customers"): "registration",
    ("GET", "/store/products"): "browsing",
    ("GET", "/store/products/{product_id}"): "browsing",
    ("GET", "/store/markets"): "browsing",
    ("GET", "/store/markets/{code}"): "browsing",
    ("POST", "/store/carts"): "guest carts (a customer's token makes the cart theirs)",
    ("GET", "/store/carts/{cart_id}"): "guest carts (owned carts answer 404 to others)",
    ("POST", "/store/carts/{cart_id}/lines"): "guest carts",
    ("PATCH", "/store/carts/{cart_id}/lines/{sku}"): "guest carts",
    ("DELETE", "/store/carts/{cart_id}/lines/{sku}"): "guest carts",
    ("POST", "/store/carts/{cart_id}/promotions"): "guest carts take discount codes",
    ("DELETE", "/store/carts/{cart_id}/promotions/{code}"): "guest carts",
    ("POST", "/store/carts/{cart_id}/checkout"): "guest checkout",
    ("GET", "/store/orders/{order_id}"): "guests read their order with its secret token",
}
# Protected, yet open to every signed-in caller whatever their scopes.
ANY_SIGNED_IN: dict[tuple[str, str], str] = {
    ("POST", "/auth/logout-all"): "anyone may end their own sessions",
}
SECRET = "route-protection-tests-" + "s" * 32
PASSWORD = "a long and secret password"
SOME_ID = "0190f3c8-0000-7000-8000-000000000000"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", SOME_ID, path)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with started(Settings(database_url=database_url, secret_key=SECRET)) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


async def token_of(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_every_operation_is_public_on_purpose_or_declares_a_bearer_token(
    app: FastAPI,
) -> None:
    listed = operations(app.openapi())
    undeclared = [
        f"{method} {path}"
        for method, path, operation in listed
        if (method, path) not in PUBLIC and not operation.get("security")
    ]
    stale = sorted(set(PUBLIC) - {(method, path) for method, path, _ in listed})

    assert not undeclared, f"routes without protection: {undeclared}"
    assert not stale, f"public routes that no longer exist: {stale}"


async def test_every_protected_operation_refuses_strangers_and_callers_without_the_scope(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await app.state.shop.identity.create_staff("nobody@shop.test", PASSWORD, scopes=frozenset())
    scopeless_staff = await token_of(http, "nobody@shop.test")
    await app.state.shop.identity.register_customer("ada@shop.test", PASSWORD, "Ada")
    customer = await token_of(http, "ada@shop.test")
    admin = Principal("admin", "staff", frozenset({"apikeys:write"}))
    key = await app.state.shop.identity.create_api_key(admin, "scopeless integration", [])
    scopeless_key = {"Authorization": f"Bearer {key.key}"}
    wrong: list[str] = []
    checked = 0
    for method, path, _ in operations(app.openapi()):
        if (method, path) in PUBLIC:
            continue
        checked += 1
        url = concrete(path)
        for headers, status, code in (
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer not-a-token"}, 401, "invalid_token"),
            (scopeless_staff, 403, "forbidden"),
            (scopeless_key, 403, "forbidden"),
            *([(customer, 403, "forbidden")] if path.startswith("/admin/") else []),
        ):
            if (method, path) in ANY_SIGNED_IN and status == 403:
                continue
            response = await http.request(method, url, headers=headers, json={})
            problem = response.json()
            if response.status_code != status or problem.get("code") != code:
                wrong.append(
                    f"{method} {path} {headers or 'anonymous'}: {response.status_code} "
                    f"{problem.get('code')}"
                )

    assert checked > 20
    assert not wrong, "\n".join(wrong)
