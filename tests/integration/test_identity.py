"""Staff accounts and access tokens, through the real identity service and its routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import Depends, FastAPI

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.principal import Principal
from colonnade.modules.identity import api
from colonnade.modules.identity.domain import StaffExists, UnknownScope, WeakPassword
from colonnade.modules.identity.service import IdentityService
from colonnade.web import problems
from colonnade.web.auth import requires
from tests.conftest import count_rows

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime.now(UTC))


@pytest.fixture
def identity(db: Database, keyring: Keyring, clock: SettableClock) -> IdentityService:
    return IdentityService(
        db,
        keyring=keyring,
        secret_key="test-secret-" * 4,
        access_token_ttl=timedelta(minutes=15),
        clock=clock,
    )


@pytest.fixture
def client(identity: IdentityService) -> httpx.AsyncClient:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = identity.authenticate
    app.include_router(api.router(identity))

    @app.get("/probe")
    async def probe(who: Principal = Depends(requires("catalog:write"))) -> dict[str, str]:
        return {"subject": who.subject}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": password})


async def test_an_admin_logs_in_and_reaches_a_route_that_needs_a_scope(
    identity: IdentityService, client: httpx.AsyncClient
) -> None:
    admin = await identity.create_staff("Admin@Shop.example", PASSWORD)
    response = await login(client, "admin@shop.example", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert "catalog:write" in body["scope"].split()
    probe = await client.get("/probe", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert probe.status_code == 200
    assert probe.json() == {"subject": admin.id}


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    identity: IdentityService, client: httpx.AsyncClient
) -> None:
    await identity.create_staff("admin@shop.example", PASSWORD)
    wrong = await login(client, "admin@shop.example", "not the password")
    unknown = await login(client, "nobody@shop.example", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_a_second_account_for_the_same_email_is_refused_and_changes_nothing(
    db: Database, identity: IdentityService
) -> None:
    await identity.create_staff("admin@shop.example", PASSWORD)
    with pytest.raises(StaffExists):
        await identity.create_staff("ADMIN@shop.example", "another long password")
    assert await count_rows(db, "identity_staff") == 1


async def test_routes_tell_missing_bad_expired_and_underprivileged_tokens_apart(
    identity: IdentityService, client: httpx.AsyncClient, clock: SettableClock
) -> None:
    await identity.create_staff(
        "clerk@shop.example", PASSWORD, scopes=frozenset({"inventory:read"})
    )
    missing = await client.get("/probe")
    assert (missing.status_code, missing.json()["code"]) == (401, "unauthorized")

    forged = await client.get("/probe", headers={"Authorization": "Bearer not.a.token"})
    assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")

    token = (await login(client, "clerk@shop.example", PASSWORD)).json()["access_token"]
    weak = await client.get("/probe", headers={"Authorization": f"Bearer {token}"})
    assert (weak.status_code, weak.json()["code"]) == (403, "forbidden")
    assert "catalog:write" in weak.json()["detail"]

    clock.advance(timedelta(minutes=15))  # the token lived its 15 minutes
    old = token
    expired = await client.get("/probe", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_a_token_signed_with_another_key_is_refused(
    db: Database,
    keyring: Keyring,
    identity: IdentityService,
    client: httpx.AsyncClient,
    clock: SettableClock,
) -> None:
    await identity.create_staff("admin@shop.example", PASSWORD)
    other = IdentityService(
        db,
        keyring=keyring,
        secret_key="another-key-" * 4,
        access_token_ttl=timedelta(minutes=5),
        clock=clock,
    )
    foreign = await other.issue_token("admin@shop.example", PASSWORD)
    response = await client.get(
        "/probe", headers={"Authorization": f"Bearer {foreign.access_token}"}
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_token")


async def test_weak_passwords_and_unknown_scopes_are_refused(
    db: Database, identity: IdentityService
) -> None:
    with pytest.raises(WeakPassword):
        await identity.create_staff("a@shop.example", "short")
    with pytest.raises(UnknownScope):
        await identity.create_staff("b@shop.example", PASSWORD, scopes=frozenset({"root"}))
    assert await count_rows(db, "identity_staff") == 0
