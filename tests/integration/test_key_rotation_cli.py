"""`colonnade keys`: a fresh master key, and rotating the data keys under every module's
encrypted columns, resumable after an interruption."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from colonnade.app import Shop, assemble
from colonnade.cli import cli
from colonnade.kernel.crypto import decode_master_key, new_master_key
from colonnade.kernel.money import Money
from colonnade.kernel.schema import data_keys
from colonnade.kernel.settings import Settings
from colonnade.modules.compliance.schema import audit_log
from colonnade.modules.compliance.service import AuditRecord
from colonnade.modules.identity.schema import customers
from colonnade.modules.orders.schema import orders as orders_table
from colonnade.modules.orders.service import NewOrder, OrderLine

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "country": "GB"}


def test_keys_new_prints_a_usable_master_key() -> None:
    printed = CliRunner().invoke(cli, ["keys", "new"])

    assert printed.exit_code == 0, printed.output
    key = printed.output.strip()
    assert len(decode_master_key(key)) == 32
    assert CliRunner().invoke(cli, ["keys", "new"]).output.strip() != key


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads its settings from the environment; the test's shop uses the same."""
    master = new_master_key()
    monkeypatch.setenv("COLONNADE_DATABASE_URL", database_url)
    monkeypatch.setenv("COLONNADE_ENCRYPTION_KEY", master)
    return Settings(database_url=database_url, encryption_key=master)


def with_shop(settings: Settings, work: Any) -> Any:
    async def run() -> Any:
        shop = assemble(settings)
        try:
            await shop.keyring.load()
            return await work(shop)
        finally:
            await shop.db.dispose()

    return asyncio.run(run())


async def buyers(shop: Shop, count: int = 5) -> None:
    """Customers and orders: personal data in two modules' encrypted columns."""
    price = Money(1000, "USD")
    for n in range(count):
        await shop.identity.register_customer(f"buyer{n}@example.com", "a long password!", "Ada")
        await shop.orders.place(
            NewOrder(
                checkout_id=f"chk-{n}",
                email=f"buyer{n}@example.com",
                market="US",
                currency="USD",
                tax_inclusive=True,
                lines=[OrderLine("MUG", "Mug", 1, price, price, Money(0, "USD"))],
                shipping=Money(0, "USD"),
                shipping_address=ADDRESS,
            )
        )
        await shop.compliance.audit.append(
            AuditRecord(
                actor_kind="staff",
                actor_id="staff-1",
                client_address="10.0.0.1",
                action="GET /admin/customers/{customer_id}/export",
                after={"email": f"buyer{n}@example.com"},
            )
        )


async def state(shop: Shop) -> dict[str, Any]:
    """Which keys hold the values, and whether every value still opens."""
    async with shop.db.reading() as conn:
        keys = await conn.scalar(select(func.count()).select_from(data_keys))
        order_rows = (await conn.execute(select(orders_table))).all()
        customer_rows = (await conn.execute(select(customers))).all()
        payloads = (await conn.execute(select(audit_log.c.payload))).scalars().all()
    tokens = [r.email_encrypted for r in order_rows] + [
        r.shipping_address_encrypted for r in order_rows
    ]
    tokens += [r.email for r in customer_rows] + [r.name for r in customer_rows]
    tokens += list(payloads)
    orders = [await shop.orders.order(r.id) for r in order_rows]
    return {
        "keys": keys,
        "active": shop.keyring.active_key_id,
        "under": {token.split(":")[1] for token in tokens},
        "emails": sorted(o.email or "" for o in orders),
        "addresses": [o.shipping_address for o in orders],
        "stale": await shop.orders.stale_rows()
        + await shop.identity.stale_rows()
        + await shop.compliance.stale_rows(),
        "audit": (await shop.compliance.audit.verify()).intact,
    }


def test_rotate_puts_every_encrypted_value_under_a_new_key(settings: Settings) -> None:
    before = with_shop(settings, _seed)

    rotated = CliRunner().invoke(cli, ["keys", "rotate"])

    assert rotated.exit_code == 0, rotated.output
    after = with_shop(settings, state)
    assert after["keys"] == before["keys"] + 1
    assert after["active"] != before["active"]
    assert after["under"] == {after["active"]}
    assert after["emails"] == [f"buyer{n}@example.com" for n in range(5)]
    assert after["addresses"] == [ADDRESS] * 5
    assert after["stale"] == 0
    assert after["audit"], "the audit chain must still verify after re-encryption"
    assert after["active"] in rotated.output


async def _seed(shop: Shop) -> dict[str, Any]:
    await buyers(shop)
    return await state(shop)


def test_an_interrupted_rotation_is_finished_by_the_next_run(settings: Settings) -> None:
    class Interrupted(Exception):
        pass

    def stop(rows: int) -> None:
        raise Interrupted

    async def interrupted_rotation(shop: Shop) -> dict[str, Any]:
        await buyers(shop)
        await shop.keyring.add_key()
        with pytest.raises(Interrupted):
            await shop.orders.reencrypt(progress=stop, batch_size=2)
        return await state(shop)

    halfway = with_shop(settings, interrupted_rotation)
    assert len(halfway["under"]) == 2
    # Orders left after the first batch, then every customer and every audit payload.
    assert halfway["stale"] == 3 + 5 + 5

    resumed = CliRunner().invoke(cli, ["keys", "rotate"])

    assert resumed.exit_code == 0, resumed.output
    assert "unfinished rotation" in resumed.output
    after = with_shop(settings, state)
    # No further key: the run finished the rotation that was under way.
    assert (after["keys"], after["active"]) == (halfway["keys"], halfway["active"])
    assert after["under"] == {after["active"]}
    assert after["stale"] == 0
    assert after["emails"] == [f"buyer{n}@example.com" for n in range(5)]
