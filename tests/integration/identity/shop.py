"""An identity service and its routes on a real database, for the identity tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import text

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.principal import Principal
from colonnade.modules.identity import api
from colonnade.modules.identity.service import IdentityService
from colonnade.web import problems
from colonnade.web.auth import requires

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
IDENTITY_TABLES = (
    "identity_staff",
    "identity_customers",
    "identity_consents",
    "identity_consent_history",
    "identity_refresh_tokens",
    "identity_login_throttles",
    "identity_api_keys",
)


def make_identity(db: Database, keyring: Keyring, clock: SettableClock) -> IdentityService:
    return IdentityService(
        db,
        keyring=keyring,
        secret_key="test-secret-" * 4,
        access_token_ttl=timedelta(minutes=15),
        refresh_token_ttl=timedelta(days=30),
        clock=clock,
    )


def make_client(identity: IdentityService) -> httpx.AsyncClient:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = identity.authenticate
    app.include_router(api.router(identity))

    @app.get("/probe/catalog")
    async def probe(who: Principal = Depends(requires("catalog:write"))) -> dict[str, Any]:
        return {"subject": who.subject, "kind": who.kind}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/auth/token", data={"username": email, "password": password})


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    http: httpx.AsyncClient, email: str = "ada@example.com", name: str = "Ada Lovelace"
) -> httpx.Response:
    return await http.post(
        "/store/customers", json={"email": email, "password": PASSWORD, "name": name}
    )


async def rows(db: Database, table: str) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        result = await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
        return [dict(r._mapping) for r in result]


async def counts(db: Database) -> dict[str, int]:
    return {table: len(await rows(db, table)) for table in IDENTITY_TABLES}
