"""Proof at rest: after real purchases, the database holds none of the buyers' personal data
in readable form; not in any table, not in SQLite's write-ahead log."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from colonnade.app import Shop
from tests.integration.storefront import check_out, customer, open_cart, product, storefront

GUEST = {
    "email": "zebulon.quixtwhistle@example.com",
    "address": {
        "name": "Zebulon Quixtwhistle",
        "line1": "742 Evergreen Fjordway",
        "city": "Springfield",
        "postal_code": "97403",
        "country": "US",
        "phone": "+1 555 0199 8877",
    },
}
CUSTOMER = {
    "email": "marguerite.vonstrudel@example.com",
    "address": {
        "name": "Marguerite Vonstrudel",
        "line1": "13 Obsidian Parade",
        "city": "London",
        "postal_code": "N1 9GU",
        "country": "GB",
        "phone": "+44 20 7946 0321",
    },
}
SECRETS = [
    GUEST["email"],
    "Quixtwhistle",
    "Evergreen Fjordway",
    "0199 8877",
    CUSTOMER["email"],
    "Vonstrudel",
    "Obsidian Parade",
    "7946 0321",
]


async def purchases(shop: Shop, http: httpx.AsyncClient) -> str:
    """A guest and a customer buy; staff find the guest's order by e-mail and ship it.
    Returns the SKU bought, which is stored readable: the control that the check sees data."""
    sku = await product(shop)
    guest = await check_out(
        http, await open_cart(http, sku), str(GUEST["email"]), dict(GUEST["address"])
    )
    assert guest.status_code == 201, guest.text
    marguerite = await customer(http, str(CUSTOMER["email"]), "Marguerite Vonstrudel")
    bought = await check_out(
        http,
        await open_cart(http, sku, marguerite),
        str(CUSTOMER["email"]),
        dict(CUSTOMER["address"]),
        marguerite,
    )
    assert bought.status_code == 201, bought.text
    found = await shop.orders.search(email=str(GUEST["email"]))
    assert [order.id for order in found.items] == [guest.json()["id"]]
    order_id = guest.json()["id"]
    await shop.orders.fulfil(order_id, "staff-1")
    await shop.orders.ship(order_id, "staff-1", "UPS", "1Z999")
    # The data is there, readable to the shop through its keys.
    assert (await shop.orders.order(bought.json()["id"])).shipping_address == CUSTOMER["address"]
    # Events reach their consumers, which may write rows of their own.
    await shop.relay.publish_due()
    return sku


def unreadable(raw: bytes, where: str, control: str) -> None:
    assert control.encode() in raw, f"{where} does not hold the orders at all"
    lowered = raw.lower()
    for secret in SECRETS:
        assert secret.lower().encode() not in lowered, f"'{secret}' is readable in {where}"


async def test_the_database_holds_no_personal_data_in_readable_form(database_url: str) -> None:
    async with storefront(database_url) as (shop, http):
        sku = await purchases(shop, http)
        if database_url.startswith("sqlite"):
            sqlite_files_unreadable(Path(database_url.split(":///", 1)[1]), sku, running=True)
        else:
            await postgresql_rows_unreadable(database_url.replace("+asyncpg", ""), sku)
    if database_url.startswith("sqlite"):
        sqlite_files_unreadable(Path(database_url.split(":///", 1)[1]), sku, running=False)


def sqlite_files_unreadable(path: Path, sku: str, *, running: bool) -> None:
    """The file and its write-ahead log, where recent writes sit while the shop runs (at
    shutdown they move into the file)."""
    wal = Path(f"{path}-wal")
    logged = wal.read_bytes() if wal.exists() else b""
    assert logged or not running, "a running shop writes through its write-ahead log"
    if logged:
        unreadable(logged, "the write-ahead log", sku)
    unreadable(path.read_bytes() + logged, "the database file", sku)


async def postgresql_rows_unreadable(dsn: str, sku: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        rows: list[str] = []
        for (table,) in tables:
            # Each row as text: every column of every table, JSON included.
            rows += [r[0] for r in await conn.fetch(f'SELECT t::text FROM "{table}" t')]  # noqa: S608
    finally:
        await conn.close()
    assert len(rows) > 20
    unreadable("\n".join(rows).encode(), "the tables", sku)
