"""The funnel from cart to paid order, and payment declines by reason, from the analytics
warehouse, through the HTTP API on both databases: carts started, checkouts decided, orders
placed and paid per market, refusals by code, declines by the provider's reason with their
share of the checkouts that asked for payment; exactly once, and kept through a rebuild."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.modules.analytics.domain import cart_started_fact, checkout_refused_fact
from colonnade.modules.analytics.warehouse import SCHEMA, Warehouse, packed, table_of
from tests.integration.analytics.shopfront import (
    ADDRESS,
    START,
    Shopfront,
    cli_env,
    priced,
)

DAY = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}


async def cart_with(front: Shopfront, market: str, *lines: tuple[str, int]) -> str:
    opened = await front.http.post("/store/carts", json={"market": market})
    assert opened.status_code == 201, opened.text
    cart_id = str(opened.json()["id"])
    for sku, quantity in lines:
        added = await front.http.post(
            f"/store/carts/{cart_id}/lines", json={"sku": sku, "quantity": quantity}
        )
        assert added.status_code == 200, added.text
    return cart_id


async def by_transfer(front: Shopfront, market: str, sku: str) -> None:
    """An order placed to be paid later by bank transfer: placed, not paid."""
    cart_id = await cart_with(front, market, (sku, 1))
    placed = await front.http.post(
        f"/store/carts/{cart_id}/checkout",
        json={
            "email": "ada@example.com",
            "shipping_address": ADDRESS,
            "payment": {"method": "bank_transfer"},
        },
        headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "placed"


async def black_friday_morning(front: Shopfront) -> None:
    """In the US: two paid orders (one of a cart changed three times), one placed to be paid
    by transfer, two declined cards, a cart left with a line, a cart left empty. In DE: a
    paid order and a checkout that found the last unit gone."""
    mug = await priced(front.shop, usd=1000, eur=900, on_hand=50)
    tee = await priced(front.shop, usd=2000, eur=1800, on_hand=50)
    last = await priced(front.shop, usd=500, eur=450, on_hand=1)
    assert (await front.buy("US", (mug, 1))).status_code == 201
    assert (await front.buy("US", (mug, 2), (tee, 1), (mug, 1))).status_code == 201
    await by_transfer(front, "US", tee)
    declined = await front.buy("US", (tee, 1), token="tok_chargeDeclined")
    assert declined.status_code == 402
    short = await front.buy("US", (mug, 3), token="tok_chargeDeclinedInsufficientFunds")
    assert short.json()["reason"] == "insufficient_funds"
    await cart_with(front, "US", (mug, 1))
    await cart_with(front, "US")
    assert (await front.buy("DE", (last, 1))).status_code == 201
    sold_out = await front.buy("DE", (last, 1))
    assert sold_out.status_code == 409, sold_out.text
    assert sold_out.json()["code"] == "out_of_stock"


US_FUNNEL = {
    "market": "US",
    "carts": 6,
    "checkouts": 5,
    "orders": 3,
    "paid": 2,
    "conversion": 33.3,
    "refused": [{"code": "payment_declined", "count": 2}],
}
DE_FUNNEL = {
    "market": "DE",
    "carts": 2,
    "checkouts": 2,
    "orders": 1,
    "paid": 1,
    "conversion": 50.0,
    "refused": [{"code": "out_of_stock", "count": 1}],
}
DECLINES = {
    "asked": 6,
    "declined": 2,
    "reasons": [
        {"reason": "card_declined", "count": 1, "percent": 16.7},
        {"reason": "insufficient_funds", "count": 1, "percent": 16.7},
    ],
}


async def test_the_funnel_counts_each_markets_carts_checkouts_and_paid_orders(
    front: Shopfront,
) -> None:
    await black_friday_morning(front)

    everywhere = await front.insight("funnel", **DAY)
    us = await front.insight("funnel", market="US", **DAY)
    next_day = await front.insight(
        "funnel",
        **{"from": DAY["to"], "to": (START + timedelta(days=2)).isoformat()},
    )

    assert everywhere == {"markets": [DE_FUNNEL, US_FUNNEL]}
    assert us == {"markets": [US_FUNNEL]}
    assert next_day == {"markets": []}


async def test_declines_are_counted_by_reason_against_the_checkouts_that_asked_for_payment(
    front: Shopfront,
) -> None:
    await black_friday_morning(front)

    everywhere = await front.insight("declines", **DAY)
    de = await front.insight("declines", market="DE", **DAY)

    # Asked: the four US orders and declines with a card or a transfer... and DE's paid one.
    assert everywhere == DECLINES
    assert de == {"asked": 1, "declined": 0, "reasons": []}


async def test_redelivered_events_and_a_rebuild_change_no_funnel_figure(
    front: Shopfront,
) -> None:
    await black_friday_morning(front)
    before = (await front.insight("funnel", **DAY), await front.insight("declines", **DAY))
    again = await front.told("cart.CartUpdated", "checkout.CheckoutFailed")
    assert len(again) >= 10
    await front.shop.analytics.seal()
    for envelope in again:
        await front.shop.bus.publish(envelope)
    redelivered = (await front.insight("funnel", **DAY), await front.insight("declines", **DAY))

    await front.shop.analytics.rebuild(
        lambda limit, offset: front.shop.orders.search(limit=limit, offset=offset)
    )
    rebuilt = (await front.insight("funnel", **DAY), await front.insight("declines", **DAY))

    assert before == ({"markets": [DE_FUNNEL, US_FUNNEL]}, DECLINES)
    assert redelivered == before
    assert rebuilt == before


@pytest.mark.parametrize("sealed_between", [False, True], ids=["staged", "sealed"])
async def test_the_funnel_of_a_later_hour_counts_only_what_happened_in_it(
    front: Shopfront, sealed_between: bool
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    cart_id = await cart_with(front, "US", (mug, 1))
    if sealed_between:
        await front.settled()
        assert await front.shop.analytics.seal() > 0
    front.clock.advance(timedelta(hours=2))
    assert (await front.buy("US", (mug, 1))).status_code == 201
    added = await front.http.post(f"/store/carts/{cart_id}/lines", json={"sku": mug, "quantity": 1})
    assert added.status_code == 200, added.text
    later = {
        "from": (START + timedelta(hours=1)).isoformat(),
        "to": (START + timedelta(hours=3)).isoformat(),
    }

    funnel = await front.insight("funnel", **later)

    # The first cart started before the window: its second line starts nothing.
    assert funnel["markets"] == [
        {
            "market": "US",
            "carts": 1,
            "checkouts": 1,
            "orders": 1,
            "paid": 1,
            "conversion": 100.0,
            "refused": [],
        }
    ]


@pytest.mark.parametrize("route", ["funnel", "declines"])
async def test_a_backwards_window_is_refused(front: Shopfront, route: str) -> None:
    refused = await front.http.get(
        f"/admin/insights/{route}",
        params={"from": DAY["to"], "to": DAY["from"]},
        headers=front.staff,
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_insight_window"


def rows_of(output: str, first_cell: str) -> list[str]:
    """The cells of the table row that starts with `first_cell`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


async def test_the_cli_shows_the_funnel_and_the_declines(
    front: Shopfront, database_url: str, tmp_path: Path
) -> None:
    await black_friday_morning(front)
    await front.settled()
    env = cli_env(database_url, tmp_path / "warehouse")
    window = ["--from", DAY["from"], "--to", DAY["to"]]
    runner = CliRunner()

    # In a thread: the command runs its own event loop.
    funnel, declines = [
        await asyncio.to_thread(runner.invoke, cli, ["insights", command, *window], env=env)
        for command in ("funnel", "declines")
    ]

    assert funnel.exit_code == 0, funnel.output
    assert rows_of(funnel.output, "US")[1:6] == ["6", "5", "3", "2", "33.3%"]
    assert rows_of(funnel.output, "DE")[-1] == "out_of_stock 1"
    assert declines.exit_code == 0, declines.output
    assert "2 of 6 payments declined" in declines.output
    assert rows_of(declines.output, "insufficient_funds") == ["insufficient_funds", "1", "16.7%"]


def test_files_written_before_refusals_were_kept_read_as_facts_without_one(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path)
    before = START - timedelta(hours=1)
    old_columns = [name for name in SCHEMA.names if name not in ("code", "reason")]
    day = tmp_path / "facts" / f"day={START.date().isoformat()}"
    day.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "id": "order_placed:o1",
                    "kind": "order_placed",
                    "occurred_at": START,
                    "order_id": "o1",
                    "market": "US",
                    "currency": "USD",
                    "amount": 1000,
                    "units": 1,
                    "sku": "",
                },
                {
                    "id": "order_paid:o1",
                    "kind": "order_paid",
                    "occurred_at": START,
                    "order_id": "o1",
                    "market": "",
                    "currency": "USD",
                    "amount": 1000,
                    "units": 0,
                    "sku": "",
                },
            ],
            schema=pa.schema([SCHEMA.field(name) for name in old_columns]),
        ),
        day / "part-old.parquet",
    )
    warehouse.write(
        "new", table_of([checkout_refused_fact("c1", START, "US", "out_of_stock", None)])
    )
    staged = [(None, packed(table_of([cart_started_fact("cart-1", START, "US", 1)])))]

    found = warehouse.outcomes(staged, before, START + timedelta(days=1), None)

    assert sorted(found) == [
        ("US", "cart_started", "", "", 1, 0),
        ("US", "checkout_refused", "out_of_stock", "", 1, 0),
        ("US", "order_placed", "", "", 1, 1),
    ]
