"""The forecast of a coming day's paid orders per hour and market, through the HTTP API on both
databases and on the shop's clock: four days of a regular pattern (three orders at ten, one at
eight in the evening) predict the same pattern, with the model's error on the last day it
knows; a market with less than three days of history is named, not forecast."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from colonnade.cli import cli
from tests.integration.analytics.shopfront import START, Shopfront, cli_env, priced

MIDNIGHT = START.replace(hour=0)


async def four_regular_days(front: Shopfront) -> None:
    mug = await priced(front.shop, usd=1000, eur=900, on_hand=500)

    def at(moment: timedelta) -> None:
        front.clock.advance(MIDNIGHT + moment - front.clock.now())

    for day in range(4):
        at(timedelta(days=day, hours=10))
        for _ in range(3):
            assert (await front.buy("US", (mug, 1))).status_code == 201
        if day == 3:
            assert (await front.buy("DE", (mug, 1))).status_code == 201
        at(timedelta(days=day, hours=20))
        assert (await front.buy("US", (mug, 1))).status_code == 201
    at(timedelta(days=4, minutes=30))


async def test_a_regular_pattern_is_forecast_hour_by_hour_with_its_error(
    front: Shopfront,
) -> None:
    await four_regular_days(front)

    found = await front.insight("forecast")

    assert found["day"] == "2026-12-02"  # tomorrow, on the shop's clock
    assert found["too_little_history"] == ["DE"], "DE sold for one day only"
    (us,) = found["markets"]
    assert us["market"] == "US"
    assert us["history_hours"] == 96
    by_hour = {hour["start"][11:16]: hour["orders"] for hour in us["hours"]}
    assert len(by_hour) == 24
    assert 2.5 <= by_hour["10:00"] <= 3.5
    assert 0.5 <= by_hour["20:00"] <= 1.5
    assert all(n < 0.5 for hour, n in by_hour.items() if hour not in ("10:00", "20:00"))
    assert us["peak"] == "2026-12-02T10:00:00Z"
    assert 3.5 <= us["orders"] <= 4.5
    assert us["backtest_error_percent"] is not None
    assert us["backtest_error_percent"] < 25


@pytest.mark.parametrize("day", ["2026-11-30", "2026-12-01", "2026-12-09"])
async def test_a_day_not_ahead_or_too_far_ahead_is_refused(front: Shopfront, day: str) -> None:
    await front.fresh_staff()
    front.clock.advance(MIDNIGHT + timedelta(days=4) - front.clock.now())
    await front.fresh_staff()

    refused = await front.http.get(
        "/admin/insights/forecast", params={"day": day}, headers=front.staff
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_forecast_day"
    assert refused.json()["today"] == "2026-12-01"


async def test_the_cli_shows_the_forecast(
    front: Shopfront, database_url: str, tmp_path: Path
) -> None:
    await four_regular_days(front)
    await front.settled()
    env = cli_env(database_url, tmp_path / "warehouse")

    # In a thread: the command runs its own event loop (and the system's clock: its tomorrow).
    shown = await asyncio.to_thread(
        CliRunner().invoke, cli, ["insights", "forecast", "--market", "US"], env=env
    )

    assert shown.exit_code == 0, shown.output
    assert "Forecast for" in shown.output
    # By the system's clock the pattern stopped days ago: the US is forecast, quietly.
    row = next(line for line in shown.output.splitlines() if "│ US" in line)
    assert len(row.strip("│ ").split("│")) == 4
