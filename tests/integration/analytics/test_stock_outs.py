"""Stock-outs and the sales they lost, from the analytics warehouse, through the HTTP API on
both databases and on the shop's clock: when each SKU sold out, until staff restocked it (or
still), and the estimate of what was lost: the demand of the hour before, over the time out,
in units and in each currency's money, for one market or all."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from colonnade.cli import cli
from tests.integration.analytics.shopfront import (
    START,
    Shopfront,
    cli_env,
    priced,
)

DAY = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}


def line_total(answers: list[httpx.Response], sku: str, currency: str) -> int:
    return sum(
        line["line_total"]["amount"]
        for answer in answers
        for line in answer.json()["lines"]
        if line["sku"] == sku and line["line_total"]["currency"] == currency
    )


async def a_morning_of_sell_outs(front: Shopfront) -> dict[str, Any]:
    """The mug (3 on hand) sells in the US at 05:00 and 05:40, in DE at 05:20, is out from
    05:40 and restocked at 06:10. The tee (2 on hand) sells at 05:50; a declined card takes
    its last unit for a moment at 06:10, a paid order for good at 06:20. Now it is 07:10."""
    mug = await priced(front.shop, usd=1000, eur=900, on_hand=3)
    tee = await priced(front.shop, usd=2000, eur=1800, on_hand=2)
    bought: dict[str, list[httpx.Response]] = {mug: [], tee: []}

    def clock_at(at: timedelta) -> None:
        front.clock.advance(START + at - front.clock.now())

    async def buy(at: timedelta, market: str, sku: str, token: str = "tok_visa") -> int:
        clock_at(at)
        answer = await front.buy(market, (sku, 1), token=token)
        if answer.status_code == 201:
            bought[sku].append(answer)
        return answer.status_code

    assert await buy(timedelta(0), "US", mug) == 201
    assert await buy(timedelta(minutes=20), "DE", mug) == 201
    assert await buy(timedelta(minutes=40), "US", mug) == 201
    assert await buy(timedelta(minutes=50), "US", tee) == 201
    clock_at(timedelta(minutes=70))
    await front.shop.inventory.set_on_hand(mug, 10)
    assert await buy(timedelta(minutes=70), "US", tee, "tok_chargeDeclined") == 402
    assert await buy(timedelta(minutes=80), "US", tee) == 201
    clock_at(timedelta(minutes=130))
    return {"mug": mug, "tee": tee, "bought": bought}


async def test_each_stock_out_says_how_long_and_what_it_lost(front: Shopfront) -> None:
    morning = await a_morning_of_sell_outs(front)
    mug, tee, bought = morning["mug"], morning["tee"], morning["bought"]

    everywhere = await front.insight("stock-outs", **DAY)
    in_de = await front.insight("stock-outs", market="DE", **DAY)

    # Out for half an hour after an hour that sold three: one and a half lost.
    mug_out = {
        "sku": mug,
        "sold_out_at": "2026-11-27T05:40:00Z",
        "back_at": "2026-11-27T06:10:00Z",
        "sold_out_seconds": 1800,
        "units_before": 3,
        "lost_units": 1.5,
        "lost_revenue": [
            {"amount": round(line_total(bought[mug], mug, "EUR") / 2), "currency": "EUR"},
            {"amount": round(line_total(bought[mug], mug, "USD") / 2), "currency": "USD"},
        ],
    }
    # Out from the declined card's moment on, still: an hour after an hour that sold one.
    tee_out = {
        "sku": tee,
        "sold_out_at": "2026-11-27T06:10:00Z",
        "back_at": None,
        "sold_out_seconds": 3600,
        "units_before": 1,
        "lost_units": 1.0,
        "lost_revenue": [
            {"amount": line_total(bought[tee][:1], tee, "USD"), "currency": "USD"},
        ],
    }
    assert everywhere == {"hours_before": 1, "stock_outs": [mug_out, tee_out]}
    # DE bought one mug in the hour before and no tee: its share of what was lost.
    assert [(o["sku"], o["units_before"], o["lost_units"]) for o in in_de["stock_outs"]] == [
        (mug, 1, 0.5),
        (tee, 0, 0.0),
    ]
    assert in_de["stock_outs"][1]["lost_revenue"] == []


async def test_demand_read_over_more_hours_spreads_it_thinner(front: Shopfront) -> None:
    morning = await a_morning_of_sell_outs(front)

    over_two_hours = await front.insight("stock-outs", hours_before="2", **DAY)

    lost = {o["sku"]: o["lost_units"] for o in over_two_hours["stock_outs"]}
    assert lost == {
        morning["mug"]: 0.8,
        morning["tee"]: 0.5,
    }  # 3 times a quarter, rounded up; 1 times a half


async def test_a_later_window_sees_none_and_redeliveries_or_a_rebuild_change_nothing(
    front: Shopfront,
) -> None:
    await a_morning_of_sell_outs(front)
    before = await front.insight("stock-outs", **DAY)
    later = {"from": (START + timedelta(hours=2)).isoformat(), "to": DAY["to"]}
    again = await front.told("inventory.StockDepleted", "inventory.StockLevelSet")

    assert (await front.insight("stock-outs", **later))["stock_outs"] == []
    await front.shop.analytics.seal()
    for envelope in again:
        await front.shop.bus.publish(envelope)
    assert len(again) >= 6  # three stock levels set, three sell-outs
    assert await front.insight("stock-outs", **DAY) == before
    await front.shop.analytics.rebuild(
        lambda limit, offset: front.shop.orders.search(limit=limit, offset=offset)
    )
    assert await front.insight("stock-outs", **DAY) == before


@pytest.mark.parametrize("hours", ["0", "169", "one"])
async def test_demand_over_no_time_or_more_than_a_week_is_refused(
    front: Shopfront, hours: str
) -> None:
    refused = await front.http.get(
        "/admin/insights/stock-outs", params={**DAY, "hours_before": hours}, headers=front.staff
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_input"


async def test_the_cli_lists_what_sold_out(
    front: Shopfront, database_url: str, tmp_path: Path
) -> None:
    morning = await a_morning_of_sell_outs(front)
    await front.settled()
    env = cli_env(database_url, tmp_path / "warehouse")

    # In a thread: the command runs its own event loop.
    shown = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["insights", "stock-outs", "--from", DAY["from"], "--to", DAY["to"]],
        env=env,
    )

    assert shown.exit_code == 0, shown.output
    rows = {
        cells[0]: cells
        for line in shown.output.splitlines()
        if (cells := [cell.strip() for cell in line.strip("│ ").split("│")])[0]
        in (morning["mug"], morning["tee"])
    }
    assert rows[morning["mug"]][:6] == [
        morning["mug"],
        "2026-11-27 05:40",
        "2026-11-27 06:10",
        "0:30:00",
        "3",
        "1.5",
    ]
    # Still out: until now on the command's own clock.
    assert rows[morning["tee"]][:3] == [morning["tee"], "2026-11-27 06:10", "still out"]
    assert rows[morning["tee"]][4] == "1"
