"""Customers in the analytics warehouse, through the HTTP API on both databases: known only by
a pseudonym (no customer id, e-mail or name in any fact), counted new or returning per market,
and, once erased, linked to their pseudonym no more: a rebuild counts their orders as guests'.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select

from colonnade.modules.analytics.schema import customers
from tests.integration.analytics.shopfront import START, Shopfront, priced
from tests.integration.storefront import PASSWORD, customer

DAY_ONE = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}
DAY_TWO = {"from": DAY_ONE["to"], "to": (START + timedelta(days=2)).isoformat()}


async def two_days(front: Shopfront) -> dict[str, Any]:
    """Day one: Ada buys in the US, Bob in DE, a guest in the US. Day two: Ada again, Cleo for
    the first time, a guest, and Ada with a card that is declined."""
    mug = await priced(front.shop, usd=1000, eur=900, on_hand=50)
    ada = await customer(front.http, "ada@shop.test", "Ada Lovelace")
    bob = await customer(front.http, "bob@shop.test", "Bob")
    cleo = await customer(front.http, "cleo@shop.test", "Cleo")
    for who in (ada, bob, None):
        market = "DE" if who is bob else "US"
        assert (await front.buy(market, (mug, 1), signed_in=who)).status_code == 201
    front.clock.advance(timedelta(days=1))
    # A day later their sign-ins have expired: they sign in again.
    ada, cleo = [await signed_in(front, email) for email in ("ada@shop.test", "cleo@shop.test")]
    for who in (ada, cleo, None):
        assert (await front.buy("US", (mug, 1), signed_in=who)).status_code == 201
    declined = await front.buy("US", (mug, 1), token="tok_chargeDeclined", signed_in=ada)
    assert declined.status_code == 402
    me = await front.http.get("/store/customers/me", headers=ada)
    return {"ada": ada, "ada_id": me.json()["id"]}


async def signed_in(front: Shopfront, email: str) -> dict[str, str]:
    token = await front.http.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def market(
    name: str, customers: int, new: int, customer_orders: int, guest_orders: int
) -> dict[str, Any]:
    return {
        "market": name,
        "customers": customers,
        "new": new,
        "returning": customers - new,
        "customer_orders": customer_orders,
        "guest_orders": guest_orders,
    }


async def test_customers_are_counted_new_or_returning_per_market(front: Shopfront) -> None:
    await two_days(front)

    first = await front.insight("customers", **DAY_ONE)
    second = await front.insight("customers", **DAY_TWO)
    both = await front.insight("customers", market="US", **{**DAY_ONE, "to": DAY_TWO["to"]})

    assert first == {"markets": [market("DE", 1, 1, 1, 0), market("US", 1, 1, 1, 1)]}
    # Ada had bought the day before: returning; Cleo is new; the declined order counts not.
    assert second == {"markets": [market("US", 2, 1, 2, 1)]}
    assert both == {"markets": [market("US", 2, 2, 3, 2)]}


async def test_no_fact_names_a_customer_and_an_erasure_unlinks_their_pseudonym(
    front: Shopfront, tmp_path: Path
) -> None:
    bought = await two_days(front)
    ada_id = bought["ada_id"]
    await front.settled()
    await front.shop.analytics.seal()
    files = sorted((tmp_path / "warehouse" / "facts").glob("day=*/part-*.parquet"))
    told = repr([pq.read_table(path).to_pylist() for path in files])
    async with front.shop.db.reading() as conn:
        (linked,) = (
            await conn.execute(
                select(customers.c.pseudonym).where(customers.c.customer_id == ada_id)
            )
        ).one()

    erased = await front.http.delete("/store/customers/me", headers=bought["ada"])
    assert erased.status_code == 204, erased.text
    await front.settled()
    async with front.shop.db.reading() as conn:
        (unlinked,) = (
            await conn.execute(
                select(customers.c.pseudonym).where(customers.c.customer_id == ada_id)
            )
        ).one()
    before_rebuild = await front.insight("customers", **DAY_TWO)
    await front.shop.analytics.rebuild(
        lambda limit, offset: front.shop.orders.search(limit=limit, offset=offset)
    )
    rebuilt = await front.insight("customers", **DAY_TWO)

    for secret in (ada_id, "ada@shop.test", "Ada Lovelace", "Lovelace"):
        assert secret not in told
    assert linked is not None
    assert linked in told, "her placements carry her pseudonym"
    assert unlinked is None
    # Her pseudonym still counts as someone, but names nobody; rebuilt, she is a guest.
    assert before_rebuild == {"markets": [market("US", 2, 1, 2, 1)]}
    assert rebuilt == {"markets": [market("US", 1, 1, 1, 2)]}
