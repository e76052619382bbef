"""Customer accounts over HTTP: registration, profile, password, consents, export, erasure."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.schema import outbox
from colonnade.modules.identity.domain import CustomerNotFound
from colonnade.modules.identity.service import IdentityService
from tests.integration.identity.shop import (
    IDENTITY_TABLES,
    PASSWORD,
    START,
    bearer,
    counts,
    login,
    refresh,
    register,
    rows,
)


async def customer_token(http: httpx.AsyncClient, email: str = "ada@example.com") -> str:
    response = await login(http, email)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def events(db: Database) -> list[tuple[str, dict[str, object]]]:
    async with db.reading() as conn:
        result = await conn.execute(select(outbox.c.event_type, outbox.c.payload))
        return [(r.event_type, r.payload) for r in result]


async def test_a_customer_registers_logs_in_and_reads_their_profile(
    db: Database, http: httpx.AsyncClient
) -> None:
    created = await register(http, email=" Ada@Example.com ")
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "email", "name"}
    assert (body["email"], body["name"]) == ("ada@example.com", "Ada Lovelace")

    token = await login(http, "ada@example.com")
    assert token.status_code == 200
    assert token.json()["scope"] == "customer"
    assert token.json()["refresh_token"]
    me = await http.get("/store/customers/me", headers=bearer(token.json()["access_token"]))
    assert me.status_code == 200
    assert me.json() == body
    assert await events(db) == [("identity.CustomerRegistered", {"customer_id": body["id"]})]


async def test_the_identity_tables_hold_no_readable_email_or_name(
    db: Database, http: httpx.AsyncClient
) -> None:
    await register(http, email="grace.hopper@example.com", name="Grace Hopper")
    token = await customer_token(http, "grace.hopper@example.com")
    await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": True},
        headers=bearer(token),
    )
    await login(http, "grace.hopper@example.com", "a wrong password")

    dump = repr([await rows(db, table) for table in IDENTITY_TABLES]).lower()
    for plain in ("grace", "hopper", "127.0.0.1", PASSWORD):
        assert plain not in dump
    customer = (await rows(db, "identity_customers"))[0]
    assert customer["email"].startswith("enc1:")
    assert customer["name"].startswith("enc1:")
    assert customer["password_hash"].startswith("$argon2id$")


async def test_registering_a_known_email_looks_new_but_creates_nothing_usable(
    db: Database, http: httpx.AsyncClient
) -> None:
    first = (await register(http)).json()
    before = await counts(db)

    again = await http.post(
        "/store/customers",
        json={"email": "ADA@example.com", "password": "another long password", "name": "Eve"},
    )

    assert again.status_code == 201
    assert set(again.json()) == {"id", "email", "name"}
    assert again.json()["id"] != first["id"]
    assert await counts(db) == before
    assert (await login(http, "ada@example.com", "another long password")).status_code == 401
    assert (await login(http, "ada@example.com")).status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-address", "password": PASSWORD, "name": "Ada"}, "invalid_input"),
        ({"email": "ada@example.com", "password": "short", "name": "Ada"}, "weak_password"),
        ({"email": "ada@example.com", "password": PASSWORD, "name": "  "}, "invalid_input"),
        ({"email": "ada@example.com", "password": PASSWORD, "name": "Ada\x00"}, "invalid_input"),
        ({"email": "a\x00da@example.com", "password": PASSWORD, "name": "Ada"}, "invalid_input"),
        ({"email": "ada@example.com", "password": PASSWORD}, "invalid_input"),
        (
            {"email": "ada@example.com", "password": PASSWORD, "name": "Ada", "admin": True},
            "invalid_input",
        ),
    ],
)
async def test_a_bad_registration_is_refused_precisely_and_creates_nothing(
    db: Database, http: httpx.AsyncClient, body: dict[str, object], code: str
) -> None:
    response = await http.post("/store/customers", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert await counts(db) == dict.fromkeys(IDENTITY_TABLES, 0)
    assert await events(db) == []


async def test_a_customer_renames_themselves_and_staff_tokens_are_not_customers(
    identity: IdentityService, http: httpx.AsyncClient
) -> None:
    await register(http)
    token = await customer_token(http)

    renamed = await http.patch(
        "/store/customers/me", json={"name": "Ada King"}, headers=bearer(token)
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ada King"
    blank = await http.patch("/store/customers/me", json={"name": ""}, headers=bearer(token))
    assert (blank.status_code, blank.json()["code"]) == (422, "invalid_input")
    me = await http.get("/store/customers/me", headers=bearer(token))
    assert me.json()["name"] == "Ada King"

    await identity.create_staff("admin@shop.example", PASSWORD)
    staff = (await login(http, "admin@shop.example")).json()["access_token"]
    refused = await http.get("/store/customers/me", headers=bearer(staff))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    no_catalog = await http.get("/probe/catalog", headers=bearer(token))
    assert (no_catalog.status_code, no_catalog.json()["code"]) == (403, "forbidden")


async def test_a_password_change_needs_the_current_password_and_ends_every_session(
    http: httpx.AsyncClient,
) -> None:
    await register(http)
    phone = (await login(http, "ada@example.com")).json()
    laptop = (await login(http, "ada@example.com")).json()
    new = "a brand new long password"

    wrong = await http.post(
        "/store/customers/me/password",
        json={"current_password": "not my password", "new_password": new},
        headers=bearer(phone["access_token"]),
    )
    assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
    weak = await http.post(
        "/store/customers/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(phone["access_token"]),
    )
    assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
    # Neither refusal changed anything: the old password and the sessions still work.
    assert (await login(http, "ada@example.com")).status_code == 200
    phone = (await refresh(http, phone["refresh_token"])).json()

    changed = await http.post(
        "/store/customers/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=bearer(phone["access_token"]),
    )
    assert changed.status_code == 204
    for session in (phone, laptop):
        revoked = await refresh(http, session["refresh_token"])
        assert (revoked.status_code, revoked.json()["code"]) == (401, "invalid_refresh_token")
    assert (await login(http, "ada@example.com")).status_code == 401
    assert (await login(http, "ada@example.com", new)).status_code == 200


async def test_consent_changes_are_kept_with_time_and_source(
    identity: IdentityService, http: httpx.AsyncClient, clock: SettableClock
) -> None:
    customer_id = (await register(http)).json()["id"]
    token = await customer_token(http)

    never = await http.get("/store/customers/me/consents", headers=bearer(token))
    assert never.json() == [{"purpose": "marketing_email", "granted": False, "changed_at": None}]
    given = await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": True},
        headers=bearer(token),
    )
    assert given.status_code == 200
    assert given.json()["granted"] is True
    clock.advance(timedelta(minutes=3))
    await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": False},
        headers=bearer(token),
    )
    now = await http.get("/store/customers/me/consents", headers=bearer(token))
    assert now.json()[0]["granted"] is False

    unknown = await http.put(
        "/store/customers/me/consents/telepathy", json={"granted": True}, headers=bearer(token)
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_consent")
    loose = await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": "yes"},
        headers=bearer(token),
    )
    assert (loose.status_code, loose.json()["code"]) == (422, "invalid_input")

    export = await identity.export_customer(customer_id)
    assert [(h["granted"], h["source"]) for h in export["consent_history"]] == [
        (True, "127.0.0.1"),
        (False, "127.0.0.1"),
    ]
    assert export["consent_history"][1]["changed_at"] == (START + timedelta(minutes=3)).isoformat()


async def test_an_export_holds_the_profile_decrypted(
    identity: IdentityService, http: httpx.AsyncClient
) -> None:
    customer_id = (await register(http)).json()["id"]

    export = await identity.export_customer(customer_id)

    assert export["id"] == customer_id
    assert (export["email"], export["name"]) == ("ada@example.com", "Ada Lovelace")
    assert export["created_at"] == START.isoformat()
    assert export["consents"] == [
        {"purpose": "marketing_email", "granted": False, "changed_at": None}
    ]
    with pytest.raises(CustomerNotFound):
        await identity.export_customer("0190f3c8-0000-7000-8000-000000000000")


async def test_an_erased_customer_cannot_log_in_and_their_email_registers_again(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    customer_id = (await register(http)).json()["id"]
    session = (await login(http, "ada@example.com")).json()
    await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": True},
        headers=bearer(session["access_token"]),
    )
    await login(http, "ada@example.com", "a wrong password")
    assert await identity.customer_exists(customer_id)

    await identity.erase_customer(customer_id)
    await identity.erase_customer(customer_id)  # repeating it changes nothing
    # Even the keyed digest of the address, kept for its failed login, is gone.
    assert await rows(db, "identity_login_throttles") == []

    assert not await identity.customer_exists(customer_id)
    denied = await login(http, "ada@example.com")
    assert (denied.status_code, denied.json()["code"]) == (401, "invalid_credentials")
    assert (await refresh(http, session["refresh_token"])).status_code == 401
    gone = await http.get("/store/customers/me", headers=bearer(session["access_token"]))
    assert (gone.status_code, gone.json()["code"]) == (404, "customer_not_found")
    with pytest.raises(CustomerNotFound):
        await identity.export_customer(customer_id)
    erased = (await rows(db, "identity_customers"))[0]
    assert {k: erased[k] for k in ("email_index", "email", "name", "password_hash")} == {
        "email_index": None,
        "email": None,
        "name": None,
        "password_hash": None,
    }
    assert erased["erased_at"] is not None
    assert [r["source"] for r in await rows(db, "identity_consent_history")] == [None]
    assert await rows(db, "identity_refresh_tokens") == []
    assert (await events(db))[-1] == ("identity.CustomerErased", {"customer_id": customer_id})
    assert [e for e, _ in await events(db)].count("identity.CustomerErased") == 1

    again = await register(http)
    assert again.status_code == 201
    assert again.json()["id"] != customer_id
    assert (await login(http, "ada@example.com")).status_code == 200
    with pytest.raises(CustomerNotFound):
        await identity.erase_customer("0190f3c8-0000-7000-8000-000000000000")


async def test_rotation_reencrypts_customer_data_under_the_newest_key(
    db: Database, keyring: Keyring, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    await register(http)
    await register(http, email="grace@example.com", name="Grace Hopper")
    token = await customer_token(http)
    await http.put(
        "/store/customers/me/consents/marketing_email",
        json={"granted": True},
        headers=bearer(token),
    )
    assert await identity.stale_rows() == 0

    new_key = await keyring.add_key()
    assert await identity.stale_rows() == 3
    seen: list[int] = []
    assert await identity.reencrypt(progress=seen.append) == 3

    assert sum(seen) == 3
    assert await identity.stale_rows() == 0
    for row in await rows(db, "identity_customers"):
        assert row["email"].startswith(f"enc1:{new_key}:")
    assert (await http.get("/store/customers/me", headers=bearer(token))).json()["name"] == (
        "Ada Lovelace"
    )
    assert (await login(http, "grace@example.com")).status_code == 200
