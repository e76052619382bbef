"""Logging in and staying logged in: refresh rotation, theft detection, logout, lockout."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import jwt
from sqlalchemy import text

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.modules.identity.service import IdentityService
from tests.integration.identity.shop import (
    PASSWORD,
    bearer,
    login,
    refresh,
    register,
    rows,
)

WRONG = "not the password at all"


def claims(access_token: str) -> dict[str, object]:
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


async def test_staff_and_customers_log_in_at_the_same_place_with_their_own_kind(
    identity: IdentityService, http: httpx.AsyncClient
) -> None:
    await identity.create_staff("admin@shop.example", PASSWORD)
    await register(http)

    staff = (await login(http, "admin@shop.example")).json()
    customer = (await login(http, "ada@example.com")).json()

    assert claims(staff["access_token"])["kind"] == "staff"
    assert "catalog:write" in str(claims(staff["access_token"])["scope"]).split()
    assert claims(customer["access_token"])["kind"] == "customer"
    assert claims(customer["access_token"])["scope"] == "customer"
    assert customer["expires_in"] == 15 * 60
    wrong = await login(http, "ada@example.com", WRONG)
    unknown = await login(http, "nobody@example.com")
    garbled = await login(http, "admin\x00@shop.example")
    for response in (wrong, unknown, garbled):
        assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_a_refresh_token_is_stored_only_as_its_digest(
    db: Database, http: httpx.AsyncClient
) -> None:
    await register(http)
    issued = (await login(http, "ada@example.com")).json()

    stored = await rows(db, "identity_refresh_tokens")

    assert len(stored) == 1
    assert issued["refresh_token"] not in repr(stored)
    assert stored[0]["expires_at"] is not None


async def test_a_refresh_token_is_spent_once_and_a_reused_one_revokes_its_family(
    http: httpx.AsyncClient,
) -> None:
    await register(http)
    first = (await login(http, "ada@example.com")).json()
    other_device = (await login(http, "ada@example.com")).json()

    second = await refresh(http, first["refresh_token"])
    assert second.status_code == 200
    second_pair = second.json()
    assert second_pair["refresh_token"] != first["refresh_token"]
    me = await http.get("/store/customers/me", headers=bearer(second_pair["access_token"]))
    assert me.status_code == 200

    stolen = await refresh(http, first["refresh_token"])
    assert (stolen.status_code, stolen.json()["code"]) == (401, "invalid_refresh_token")
    # The thief's copy and the owner's newer token of that login are both dead now...
    assert (await refresh(http, second_pair["refresh_token"])).status_code == 401
    # ...while another login of the same customer is untouched.
    assert (await refresh(http, other_device["refresh_token"])).status_code == 200


async def test_a_refresh_token_expires_and_nonsense_is_refused(
    http: httpx.AsyncClient, clock: SettableClock
) -> None:
    await register(http)
    issued = (await login(http, "ada@example.com")).json()

    nonsense = await refresh(http, "not-a-refresh-token")
    assert (nonsense.status_code, nonsense.json()["code"]) == (401, "invalid_refresh_token")
    missing = await http.post("/auth/token", data={"grant_type": "refresh_token"})
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_input")
    odd = await http.post("/auth/token", data={"grant_type": "client_credentials"})
    assert (odd.status_code, odd.json()["code"]) == (422, "invalid_input")

    clock.advance(timedelta(days=30))
    expired = await refresh(http, issued["refresh_token"])
    assert (expired.status_code, expired.json()["code"]) == (401, "invalid_refresh_token")


async def test_logout_ends_one_login_and_logout_all_ends_every_login_of_the_caller(
    identity: IdentityService, http: httpx.AsyncClient
) -> None:
    await register(http)
    await register(http, email="grace@example.com", name="Grace Hopper")
    phone = (await login(http, "ada@example.com")).json()
    laptop = (await login(http, "ada@example.com")).json()
    tablet = (await login(http, "ada@example.com")).json()
    grace = (await login(http, "grace@example.com")).json()

    out = await http.post("/auth/logout", json={"refresh_token": phone["refresh_token"]})
    assert out.status_code == 204
    assert (await refresh(http, phone["refresh_token"])).status_code == 401
    laptop = (await refresh(http, laptop["refresh_token"])).json()
    again = await http.post("/auth/logout", json={"refresh_token": phone["refresh_token"]})
    assert again.status_code == 204
    bad = await http.post("/auth/logout", json={"token": phone["refresh_token"]})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")

    everywhere = await http.post("/auth/logout-all", headers=bearer(laptop["access_token"]))
    assert everywhere.status_code == 204
    for session in (laptop, tablet):
        assert (await refresh(http, session["refresh_token"])).status_code == 401
    assert (await refresh(http, grace["refresh_token"])).status_code == 200
    anonymous = await http.post("/auth/logout-all")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")


async def test_a_disabled_staff_member_cannot_log_in_or_refresh(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    await identity.create_staff("clerk@shop.example", PASSWORD, roles=["warehouse"])
    session = (await login(http, "clerk@shop.example")).json()
    async with db.transaction() as uow:
        await uow.execute(text("UPDATE identity_staff SET disabled = :yes"), {"yes": True})
        await uow.commit()

    assert (await login(http, "clerk@shop.example")).status_code == 401
    assert (await refresh(http, session["refresh_token"])).status_code == 401


async def test_repeated_failures_lock_an_address_with_a_growing_back_off(
    http: httpx.AsyncClient, clock: SettableClock
) -> None:
    await register(http)
    for _ in range(5):
        failed = await login(http, "ada@example.com", WRONG)
        assert failed.status_code == 401

    locked = await login(http, "ada@example.com")  # even the right password waits
    assert locked.status_code == 429
    assert locked.headers["content-type"] == "application/problem+json"
    assert locked.json()["code"] == "login_locked"
    assert locked.headers["retry-after"] == "30"

    clock.advance(timedelta(seconds=29))
    assert (await login(http, "ada@example.com")).headers["retry-after"] == "1"
    clock.advance(timedelta(seconds=1))
    assert (await login(http, "ada@example.com", WRONG)).status_code == 401
    relocked = await login(http, "ada@example.com")
    assert (relocked.status_code, relocked.headers["retry-after"]) == (429, "60")

    clock.advance(timedelta(seconds=60))
    assert (await login(http, "ada@example.com")).status_code == 200
    # Success forgives: the next failure starts counting from one again.
    assert (await login(http, "ada@example.com", WRONG)).status_code == 401
    assert (await login(http, "ada@example.com")).status_code == 200


async def test_the_back_off_doubles_up_to_an_hour(
    http: httpx.AsyncClient, clock: SettableClock
) -> None:
    for _ in range(5):
        await login(http, "ada@example.com", WRONG)
    waits = []
    for _ in range(10):
        locked = await login(http, "ada@example.com", WRONG)
        waits.append(int(locked.headers["retry-after"]))
        clock.advance(timedelta(seconds=waits[-1]))
        assert (await login(http, "ada@example.com", WRONG)).status_code == 401
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


async def test_an_unknown_address_is_locked_alike_and_a_quiet_window_forgives(
    db: Database, http: httpx.AsyncClient, clock: SettableClock
) -> None:
    for _ in range(4):
        assert (await login(http, "nobody@example.com", WRONG)).status_code == 401
    clock.advance(timedelta(minutes=15))
    for _ in range(4):
        assert (await login(http, "nobody@example.com", WRONG)).status_code == 401
    assert (await login(http, "nobody@example.com", WRONG)).status_code == 401
    locked = await login(http, "nobody@example.com", WRONG)
    assert (locked.status_code, locked.json()["code"]) == (429, "login_locked")
    assert "nobody" not in repr(await rows(db, "identity_login_throttles"))


async def test_parallel_guesses_cannot_slip_past_the_lockout(http: httpx.AsyncClient) -> None:
    await register(http)

    answers = await asyncio.gather(*(login(http, "ada@example.com", WRONG) for _ in range(10)))

    assert Counter(a.status_code for a in answers) == {401: 5, 429: 5}


async def test_pruning_forgets_expired_refresh_tokens_and_forgiven_throttles_only(
    db: Database, http: httpx.AsyncClient, identity: IdentityService, clock: SettableClock
) -> None:
    await register(http)
    assert (await login(http, "ada@example.com")).status_code == 200
    assert (await login(http, "old@example.com", WRONG)).status_code == 401
    clock.advance(timedelta(days=31))
    assert (await login(http, "ada@example.com")).status_code == 200
    assert (await login(http, "new@example.com", WRONG)).status_code == 401

    assert await identity.prune() == 2

    assert len(await rows(db, "identity_refresh_tokens")) == 1
    assert len(await rows(db, "identity_login_throttles")) == 1
    locked_out = [await login(http, "new@example.com", WRONG) for _ in range(5)]
    assert locked_out[-1].status_code == 429
