"""The system's side of the warehouse, on both databases: what a shop process answered per
route and minute is in the warehouse's files once it stops, and the slowest routes insight
adds it up: requests per route template, latency percentiles, the trend against before."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel.settings import Settings
from tests.integration.analytics.shopfront import cli_env
from tests.integration.storefront import PASSWORD, SECRET, client, started


def settings_of(database_url: str, warehouse: Path, *, minutes: bool) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        analytics_dir=str(warehouse),
        analytics_route_minutes=minutes,
    )


async def test_what_a_process_answered_is_kept_per_route_and_the_slowest_come_first(
    database_url: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    answering = settings_of(database_url, warehouse, minutes=True)
    async with started(answering) as app, client(app) as http:
        for _ in range(5):
            assert (await http.get("/store/markets")).status_code == 200
        # Refused (no market named): an answer of its route all the same.
        assert (await http.get(f"/store/products/{uuid.uuid4()}")).status_code == 422
        await app.state.shop.identity.create_staff("ops@shop.test", PASSWORD)
        process = app.state.minutes.process
    # Stopped: what it answered is written, named by the process.
    files = sorted((warehouse / "routes").glob("day=*/part-*.parquet"))
    kept = [row for path in files for row in pq.read_table(path).to_pylist()]
    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }

    reading = settings_of(database_url, warehouse, minutes=False)
    async with started(reading) as app, client(app) as http:
        token = await http.post(
            "/auth/token", data={"username": "ops@shop.test", "password": PASSWORD}
        )
        staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
        answer = await http.get("/admin/insights/routes", params=window, headers=staff)
        refused = await http.get(
            "/admin/insights/routes",
            params={"from": window["to"], "to": window["from"]},
            headers=staff,
        )

    assert len(files) == 1
    assert files[0].name.startswith(f"part-{process}-")
    assert {row["process"] for row in kept} == {process}
    assert answer.status_code == 200, answer.text
    routes = {row["route"]: row for row in answer.json()["routes"]}
    assert routes["GET /store/markets"]["requests"] == 5
    assert routes["GET /store/markets"]["errors"] == 0
    assert routes["GET /store/products/{product_id}"]["requests"] == 1
    markets = routes["GET /store/markets"]
    assert 0 < markets["p50_ms"] <= markets["p95_ms"] <= markets["p99_ms"]
    assert markets["p95_ms_before"] is None, "nothing was answered the hour before"
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_insight_window"


def test_the_cli_lists_the_slowest_routes(database_url: str, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"

    async def answer_some() -> None:
        answering = settings_of(database_url, warehouse, minutes=True)
        async with started(answering) as app, client(app) as http:
            for _ in range(3):
                assert (await http.get("/store/markets")).status_code == 200

    asyncio.run(answer_some())
    now = datetime.now(UTC)
    env = cli_env(database_url, warehouse)
    window = [
        "--from",
        (now - timedelta(hours=1)).isoformat(),
        "--to",
        (now + timedelta(hours=1)).isoformat(),
    ]

    shown = CliRunner().invoke(cli, ["insights", "routes", *window], env=env)

    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "GET /store/markets" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][1:3] == ["3", "0"]
