"""The buyer's personal data in orders: kept encrypted, exported, erased, re-encrypted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.orders.schema import history as history_table
from colonnade.modules.orders.schema import orders as orders_table
from colonnade.modules.orders.service import NewOrder, OrderLine, OrdersService

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "country": "GB"}


def usd(amount: int) -> Money:
    return Money(amount, "USD")


def new_order(
    checkout_id: str, *, email: str = "ada@example.com", customer_id: str | None = None
) -> NewOrder:
    return NewOrder(
        checkout_id=checkout_id,
        email=email,
        market="US",
        currency="USD",
        tax_inclusive=False,
        lines=[OrderLine("MUG-RED", "Red mug", 2, usd(1200), usd(2400), usd(192))],
        shipping=usd(500),
        shipping_address=ADDRESS,
        payment_id=f"pay-{checkout_id}",
        customer_id=customer_id,
    )


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def orders(db: Database, keyring: Keyring, clock: SettableClock) -> OrdersService:
    return OrdersService(db, keyring=keyring, clock=clock)


async def stored(db: Database, order_id: str) -> dict[str, Any]:
    async with db.reading() as conn:
        row = (await conn.execute(select(orders_table).where(orders_table.c.id == order_id))).one()
    return dict(row._mapping)


async def payloads(db: Database) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        rows = await conn.execute(select(outbox.c.event_type, outbox.c.payload))
        return [{"type": row.event_type, **row.payload} for row in rows]


async def test_an_order_keeps_the_buyer_encrypted_and_shows_them_decrypted(
    db: Database, orders: OrdersService, keyring: Keyring
) -> None:
    placed = await orders.place(new_order("chk-1", email="  Ada@Example.com "))

    row = await stored(db, placed.order.id)
    assert row["email_encrypted"].startswith(f"enc1:{keyring.active_key_id}:")
    assert row["shipping_address_encrypted"].startswith(f"enc1:{keyring.active_key_id}:")
    assert "ada@example.com" not in str(row).lower()
    assert "Analytical" not in str(row)
    # The digest identity keeps for customers' e-mails, so both find one address alike.
    assert row["email_index"] == keyring.blind_index("ada@example.com", context="email")
    shown = await orders.order(placed.order.id)
    assert (shown.email, shown.shipping_address) == ("ada@example.com", ADDRESS)
    found = await orders.search(email="ADA@example.com ")
    assert [order.id for order in found.items] == [placed.order.id]


async def test_no_order_event_carries_the_buyers_personal_data(
    db: Database, orders: OrdersService
) -> None:
    placed = await orders.place(new_order("chk-1", customer_id="cust-1"))
    order_id = placed.order.id
    await orders.mark_paid(order_id, placed.order.total)
    await orders.fulfil(order_id, "staff-1")
    await orders.ship(order_id, "staff-1", "UPS", "1Z999")

    events = await payloads(db)
    assert {e["type"] for e in events} >= {"orders.OrderPlaced", "orders.OrderShipped"}
    text = str(events).lower()
    for personal in ("ada@example.com", "lovelace", "analytical"):
        assert personal not in text
    placed_event = next(e for e in events if e["type"] == "orders.OrderPlaced")
    assert placed_event["customer_id"] == "cust-1"


async def test_a_customers_export_holds_their_orders_and_nobody_elses(
    orders: OrdersService, clock: SettableClock
) -> None:
    first = await orders.place(new_order("chk-1", customer_id="cust-1"))
    clock.advance(timedelta(minutes=1))
    second = await orders.place(new_order("chk-2", customer_id="cust-1"))
    await orders.mark_paid(second.order.id, second.order.total)
    await orders.place(new_order("chk-3", email="bob@example.com", customer_id="cust-2"))

    exported = await orders.export_for_customer("cust-1")

    assert [o["id"] for o in exported] == [second.order.id, first.order.id]
    newest = exported[0]
    assert (newest["email"], newest["shipping_address"]) == ("ada@example.com", ADDRESS)
    assert (newest["status"], newest["total"], newest["paid"]) == (
        "paid",
        {"amount": 3092, "currency": "USD"},
        {"amount": 3092, "currency": "USD"},
    )
    assert newest["lines"][0]["line_total"] == {"amount": 2400, "currency": "USD"}
    assert [step["to"] for step in newest["history"]] == ["placed", "paid"]
    assert await orders.export_for_customer("nobody") == []


async def test_anonymizing_a_customer_keeps_the_books_and_forgets_the_person(
    db: Database, orders: OrdersService, keyring: Keyring
) -> None:
    mine = await orders.place(new_order("chk-1", customer_id="cust-1"))
    order_id = mine.order.id
    await orders.mark_paid(order_id, mine.order.total)
    await orders.fulfil(order_id, "staff-1")
    await orders.ship(order_id, "staff-1", "UPS", "1Z999")
    theirs = await orders.place(new_order("chk-2", email="bob@example.com", customer_id="cust-2"))

    assert await orders.anonymize_customer("cust-1") == 1

    order = await orders.order(order_id)
    assert (order.email, order.shipping_address, order.customer_id) == (None, None, None)
    assert order.anonymized_at is not None
    assert (order.status.value, order.total, order.paid) == ("shipped", usd(3092), usd(3092))
    assert [line.sku for line in order.lines] == ["MUG-RED"]
    assert [step.to_status.value for step in order.history] == [
        "placed",
        "paid",
        "fulfilled",
        "shipped",
    ]
    # The tracking number was a note; notes are free text and go too.
    assert all(step.note is None for step in order.history)
    row = await stored(db, order_id)
    assert (row["email_encrypted"], row["email_index"], row["shipping_address_encrypted"]) == (
        None,
        None,
        None,
    )
    async with db.reading() as conn:
        notes = await conn.scalars(
            select(history_table.c.note).where(history_table.c.order_id == order_id)
        )
        assert list(notes) == [None, None, None, None]
    assert (await orders.search(email="ada@example.com")).total == 0
    assert (await orders.orders_of_customer("cust-1")).total == 0
    assert await orders.export_for_customer("cust-1") == []
    # Someone else's order is untouched, and doing it again changes nothing.
    assert (await orders.order(theirs.order.id)).email == "bob@example.com"
    assert await orders.anonymize_customer("cust-1") == 0


async def test_retention_anonymizes_only_guest_orders_placed_before_the_cutoff(
    orders: OrdersService, clock: SettableClock
) -> None:
    old_guest = await orders.place(new_order("chk-1"))
    old_customer = await orders.place(new_order("chk-2", customer_id="cust-1"))
    clock.advance(timedelta(days=400))
    new_guest = await orders.place(new_order("chk-3"))
    cutoff = START + timedelta(days=365)

    assert await orders.erase_guest_data(cutoff) == 1

    assert (await orders.order(old_guest.order.id)).email is None
    assert (await orders.order(old_guest.order.id)).total == usd(3092)
    assert (await orders.order(old_customer.order.id)).email == "ada@example.com"
    assert (await orders.order(new_guest.order.id)).shipping_address == ADDRESS
    assert await orders.erase_guest_data(cutoff) == 0


async def test_rotation_re_encrypts_every_order_under_the_new_key(
    db: Database, orders: OrdersService, keyring: Keyring
) -> None:
    ids = [(await orders.place(new_order(f"chk-{n}"))).order.id for n in range(5)]
    old_key = keyring.active_key_id
    new_key = await keyring.add_key()
    assert new_key != old_key
    assert await orders.stale_rows() == 5

    seen: list[int] = []
    assert await orders.reencrypt(progress=seen.append, batch_size=2) == 5

    assert seen == [2, 2, 1]
    assert await orders.stale_rows() == 0
    for order_id in ids:
        row = await stored(db, order_id)
        assert row["email_encrypted"].startswith(f"enc1:{new_key}:")
        assert row["shipping_address_encrypted"].startswith(f"enc1:{new_key}:")
        order = await orders.order(order_id)
        assert (order.email, order.shipping_address) == ("ada@example.com", ADDRESS)


async def test_an_interrupted_rotation_is_finished_by_running_it_again(
    orders: OrdersService, keyring: Keyring
) -> None:
    ids = [(await orders.place(new_order(f"chk-{n}"))).order.id for n in range(5)]
    # An anonymized order has nothing to re-encrypt and is never counted as stale.
    await orders.place(new_order("chk-gone", customer_id="cust-1"))
    await orders.anonymize_customer("cust-1")
    await keyring.add_key()

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(rows: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await orders.reencrypt(progress=stop_after_first_batch, batch_size=2)
    assert await orders.stale_rows() == 3

    assert await orders.reencrypt(batch_size=2) == 3

    assert await orders.stale_rows() == 0
    assert [(await orders.order(i)).email for i in ids] == ["ada@example.com"] * 5
