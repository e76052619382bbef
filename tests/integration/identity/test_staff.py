"""Staff roles and API keys for integrations, over HTTP."""

from __future__ import annotations

import hashlib

import httpx

from colonnade.kernel.db import Database
from colonnade.modules.identity.domain import ROLES
from colonnade.modules.identity.service import IdentityService
from tests.integration.identity.shop import (
    PASSWORD,
    bearer,
    counts,
    login,
    rows,
)


async def staff_token(
    identity: IdentityService,
    http: httpx.AsyncClient,
    email: str,
    *,
    roles: list[str] | None = None,
    scopes: frozenset[str] | None = None,
) -> dict[str, str]:
    await identity.create_staff(email, PASSWORD, roles=roles, scopes=scopes)
    response = await login(http, email)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def new_staff(email: str, roles: list[str]) -> dict[str, object]:
    return {"email": email, "password": PASSWORD, "name": "Sam Clerk", "roles": roles}


async def test_an_admin_creates_staff_whose_tokens_carry_their_roles_scopes(
    identity: IdentityService, http: httpx.AsyncClient
) -> None:
    admin = await staff_token(identity, http, "admin@shop.example")

    created = await http.post(
        "/admin/staff", json=new_staff("sam@shop.example", ["warehouse", "support"]), headers=admin
    )

    assert created.status_code == 201
    body = created.json()
    assert "password" not in repr(body)
    assert "hash" not in repr(body)
    expected = sorted(ROLES["warehouse"] | ROLES["support"])
    assert (body["roles"], body["scopes"]) == (["support", "warehouse"], expected)
    token = (await login(http, "sam@shop.example")).json()
    assert token["scope"].split() == expected
    denied = await http.get("/probe/catalog", headers=bearer(token["access_token"]))
    assert (denied.status_code, denied.json()["code"]) == (403, "forbidden")


async def test_bad_staff_requests_are_refused_precisely_and_change_nothing(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    admin = await staff_token(identity, http, "admin@shop.example")
    hiring = await staff_token(
        identity, http, "hr@shop.example", scopes=frozenset({"staff:write", "orders:read"})
    )
    clerk = await staff_token(identity, http, "clerk@shop.example", roles=["warehouse"])
    before = await counts(db)

    cases = [
        (admin, new_staff("sam@shop.example", ["janitor"]), 422, "unknown_role"),
        (admin, new_staff("sam@shop.example", []), 422, "invalid_input"),
        (admin, new_staff("not-an-address", ["support"]), 422, "invalid_input"),
        (
            admin,
            {**new_staff("sam@shop.example", ["support"]), "password": "x"},
            422,
            "weak_password",
        ),
        (admin, new_staff("clerk@shop.example", ["support"]), 409, "staff_exists"),
        (hiring, new_staff("sam@shop.example", ["admin"]), 403, "scope_not_held"),
        (clerk, new_staff("sam@shop.example", ["warehouse"]), 403, "forbidden"),
        ({}, new_staff("sam@shop.example", ["warehouse"]), 401, "unauthorized"),
    ]
    for headers, body, status, code in cases:
        response = await http.post("/admin/staff", json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), body

    assert await counts(db) == before


async def test_an_api_key_is_shown_once_stored_as_a_digest_and_works_until_revoked(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    admin = await staff_token(identity, http, "admin@shop.example")

    made = await http.post(
        "/admin/api-keys", json={"name": "ERP sync", "scopes": ["catalog:write"]}, headers=admin
    )

    assert made.status_code == 201
    key = made.json()["key"]
    key_id = made.json()["id"]
    assert key.startswith(f"ck_{key_id}_")
    secret = key.removeprefix(f"ck_{key_id}_")
    assert len(secret) >= 43  # 32 random bytes in URL-safe base64
    stored = await rows(db, "identity_api_keys")
    assert secret not in repr(stored)
    assert stored[0]["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    listed = await http.get("/admin/api-keys", headers=admin)
    assert [k["id"] for k in listed.json()] == [key_id]
    assert secret not in listed.text
    assert "key" not in listed.json()[0]

    probe = await http.get("/probe/catalog", headers=bearer(key))
    assert probe.json() == {"subject": key_id, "kind": "api_key"}

    revoked = await http.delete(f"/admin/api-keys/{key_id}", headers=admin)
    assert revoked.status_code == 204
    refused = await http.get("/probe/catalog", headers=bearer(key))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    assert (await http.delete(f"/admin/api-keys/{key_id}", headers=admin)).status_code == 204
    assert (await http.get("/admin/api-keys", headers=admin)).json()[0]["revoked_at"]


async def test_api_keys_hold_only_their_scopes_and_forged_keys_are_refused(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    admin = await staff_token(identity, http, "admin@shop.example")
    made = await http.post(
        "/admin/api-keys", json={"name": "stock feed", "scopes": ["inventory:read"]}, headers=admin
    )
    key = made.json()["key"]
    key_id = made.json()["id"]

    weak = await http.get("/probe/catalog", headers=bearer(key))
    assert (weak.status_code, weak.json()["code"]) == (403, "forbidden")
    for forged in (
        "ck_",
        "ck_garbage",
        f"ck_{key_id}_",
        f"ck_{key_id}_{'A' * 43}",
        key.replace(key_id, "0190f3c8-0000-7000-8000-000000000000"),
    ):
        response = await http.get("/probe/catalog", headers=bearer(forged))
        assert (response.status_code, response.json()["code"]) == (401, "invalid_token"), forged


async def test_api_keys_cannot_get_unknown_scopes_or_more_than_their_creator_holds(
    db: Database, identity: IdentityService, http: httpx.AsyncClient
) -> None:
    admin = await staff_token(identity, http, "admin@shop.example")
    integrator = await staff_token(
        identity, http, "dev@shop.example", scopes=frozenset({"apikeys:write", "orders:read"})
    )
    before = await counts(db)

    cases = [
        (admin, {"name": "x", "scopes": ["root"]}, 422, "unknown_scope"),
        (admin, {"name": "x", "scopes": ["customer"]}, 422, "unknown_scope"),
        (admin, {"name": "x", "scopes": []}, 422, "invalid_input"),
        (admin, {"name": "", "scopes": ["orders:read"]}, 422, "invalid_input"),
        (
            integrator,
            {"name": "x", "scopes": ["orders:read", "orders:refund"]},
            403,
            "scope_not_held",
        ),
    ]
    for headers, body, status, code in cases:
        response = await http.post("/admin/api-keys", json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert await counts(db) == before
    unknown = await http.delete(
        "/admin/api-keys/0190f3c8-0000-7000-8000-000000000000", headers=admin
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "api_key_not_found")

    allowed = await http.post(
        "/admin/api-keys", json={"name": "reports", "scopes": ["orders:read"]}, headers=integrator
    )
    assert allowed.status_code == 201
