"""Notifications: a paid order is confirmed to its buyer by e-mail, recorded without the
buyer's address in readable form, and an erased customer's messages forget them."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import text

from colonnade.app import Shop
from colonnade.modules.notifications.service import SentMessage
from tests.integration.storefront import check_out, customer, open_cart, product, storefront

EMAIL = "hildegard.marchbanks@example.com"
NAME = "Hildegard Marchbanks"
ADDRESS = {
    "name": NAME,
    "line1": "9 Quillfeather Close",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


async def sent_once_delivered(shop: Shop, order_id: str) -> list[SentMessage]:
    """The order's messages, once the relay has delivered its OrderPaid."""
    deadline = time.monotonic() + 30
    while not (sent := await shop.notifications.sent_for_order(order_id)):
        assert time.monotonic() < deadline, "no message within 30 s"
        await asyncio.sleep(0.05)
    return sent


async def test_a_paid_order_is_confirmed_to_its_buyer(database_url: str) -> None:
    async with storefront(database_url) as (shop, http):
        sku = await product(shop, price=1250)
        bought = await check_out(http, await open_cart(http, sku), EMAIL, ADDRESS)
        assert bought.status_code == 201, bought.text
        order = bought.json()

        [message] = await sent_once_delivered(shop, order["id"])

        assert message.recipient == EMAIL
        assert message.subject == f"Your order {order['number']} is confirmed"
        # 12.50 plus 10 % tax.
        assert "Total paid: 13.75 USD" in message.body
        assert f"1 x Thing {sku}" in message.body
        async with shop.db.reading() as conn:
            raw = (
                await conn.execute(
                    text("SELECT recipient_encrypted, body FROM notifications_messages")
                )
            ).one()
        assert raw.recipient_encrypted.startswith("enc1:")
        assert EMAIL not in raw.recipient_encrypted
        assert "marchbanks" not in raw.recipient_encrypted.lower()
        # The body names what was bought, never who bought it.
        assert "Marchbanks" not in raw.body
        assert "Quillfeather" not in raw.body


async def test_an_erased_customer_is_forgotten_by_their_messages(database_url: str) -> None:
    async with storefront(database_url) as (shop, http):
        token = await customer(http, EMAIL, NAME)
        sku = await product(shop)
        bought = await check_out(http, await open_cart(http, sku, token), EMAIL, ADDRESS, token)
        assert bought.status_code == 201, bought.text
        order_id = bought.json()["id"]
        [before] = await sent_once_delivered(shop, order_id)
        assert before.recipient == EMAIL
        assert before.customer_id is not None

        erased = await http.delete("/store/customers/me", headers=token)
        assert erased.status_code == 204

        deadline = time.monotonic() + 30
        while (await shop.notifications.sent_for_order(order_id))[0].recipient is not None:
            assert time.monotonic() < deadline, "the message still names the erased customer"
            await asyncio.sleep(0.05)
        [after] = await shop.notifications.sent_for_order(order_id)
        assert after.customer_id is None
        assert after.subject == before.subject


async def test_guests_messages_forget_the_recipient_after_the_retention_period(
    database_url: str,
) -> None:
    async with storefront(database_url) as (shop, http):
        sku = await product(shop)
        guest = await check_out(http, await open_cart(http, sku), EMAIL, ADDRESS)
        token = await customer(http, "kept@example.com", "Kept Customer")
        member = await check_out(
            http, await open_cart(http, sku, token), "kept@example.com", ADDRESS, token
        )
        [guest_message] = await sent_once_delivered(shop, guest.json()["id"])
        await sent_once_delivered(shop, member.json()["id"])

        assert await shop.notifications.forget_guest_recipients(guest_message.sent_at) == 0
        later = guest_message.sent_at + timedelta(seconds=1)
        assert await shop.notifications.forget_guest_recipients(later) == 1

        [forgotten] = await shop.notifications.sent_for_order(guest.json()["id"])
        [kept] = await shop.notifications.sent_for_order(member.json()["id"])
        assert forgotten.recipient is None
        assert forgotten.subject == guest_message.subject
        assert kept.recipient == "kept@example.com"
