"""The shop maintains itself: every job reports its runs to metrics, a failing job is counted
and keeps its schedule, expired reservations return to stock with no request at all, and a
stock level changed behind the ledger's back is found and reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from colonnade.app import Shop, assemble
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.settings import Settings
from colonnade.ops.maintenance import Job, Maintenance
from tests.integration.storefront import PASSWORD, SECRET, client, product, started

DEADLINE_SECONDS = 90


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[tuple[Shop, SettableClock]]:
    clock = SettableClock(datetime.now(UTC))
    shop = assemble(Settings(database_url=database_url, secret_key=SECRET), clock=clock)
    await shop.keyring.load()
    try:
        yield shop, clock
    finally:
        await shop.db.dispose()


async def test_every_job_reports_each_run_to_metrics(shop: tuple[Shop, SettableClock]) -> None:
    assembled, _ = shop
    names = [job.name for job in assembled.maintenance.jobs]
    assert {
        "expire-reservations",
        "expire-carts",
        "prune-outbox",
        "prune-inbox",
        "count-dead-letters",
        "check-stock-ledger",
    } <= set(names)
    runs = {n: metric("colonnade_maintenance_runs_total", job=n, outcome="ok") for n in names}
    timed = {n: metric("colonnade_maintenance_duration_seconds_count", job=n) for n in names}
    started_at = time.time()

    await assembled.maintenance.run_all_once()

    for name in names:
        assert metric("colonnade_maintenance_runs_total", job=name, outcome="ok") == runs[name] + 1
        assert metric("colonnade_maintenance_duration_seconds_count", job=name) == timed[name] + 1
        assert (
            metric("colonnade_maintenance_last_success_timestamp_seconds", job=name) >= started_at
        )


async def test_a_failing_job_is_counted_and_runs_again_on_its_schedule() -> None:
    attempts = 0
    tried_thrice = asyncio.Event()

    async def broken() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            tried_thrice.set()
        raise RuntimeError("database gone")

    def failed() -> float:
        return metric("colonnade_maintenance_runs_total", job="broken", outcome="failed")

    before = failed()
    maintenance = Maintenance([Job("broken", 0.01, broken)])
    maintenance.start()
    try:
        await asyncio.wait_for(tried_thrice.wait(), DEADLINE_SECONDS)
    finally:
        await maintenance.stop()

    assert attempts >= 3
    assert failed() - before == attempts
    assert metric("colonnade_maintenance_runs_total", job="broken", outcome="ok") == 0
    assert (
        REGISTRY.get_sample_value(
            "colonnade_maintenance_last_success_timestamp_seconds", {"job": "broken"}
        )
        is None
    )


async def test_expiring_reservations_counts_the_reservations_it_released(
    shop: tuple[Shop, SettableClock],
) -> None:
    assembled, clock = shop
    await assembled.inventory.set_on_hand("MUG", 5)
    for reference in ("cart-1", "cart-2"):
        await assembled.inventory.reserve(reference, [("MUG", 2)])
    job = next(j for j in assembled.maintenance.jobs if j.name == "expire-reservations")
    items = metric("colonnade_maintenance_items_total", job=job.name)
    expired = metric("colonnade_reservations_expired_total")

    clock.advance(timedelta(seconds=assembled.settings.reservation_ttl_seconds + 1))
    await assembled.maintenance.run_all_once()

    assert metric("colonnade_maintenance_items_total", job=job.name) == items + 2
    assert metric("colonnade_reservations_expired_total") == expired + 2
    assert (await assembled.inventory.stock("MUG")).available == 5


async def test_a_stock_level_changed_behind_the_ledger_is_reported(
    shop: tuple[Shop, SettableClock],
) -> None:
    assembled, _ = shop
    await assembled.inventory.set_on_hand("MUG", 5)
    await assembled.inventory.set_on_hand("TEE", 5)
    reservation = await assembled.inventory.reserve("cart-1", [("TEE", 2)])
    await assembled.inventory.commit(reservation.id)
    job = next(j for j in assembled.maintenance.jobs if j.name == "check-stock-ledger")
    await job.run()
    assert metric("colonnade_stock_ledger_drift_skus") == 0

    async with assembled.db.transaction() as uow:
        await uow.connection.exec_driver_sql(
            "UPDATE inventory_stock SET sold = sold - 1 WHERE sku = 'TEE'"
        )
        await uow.commit()
    with capture_logs() as logs:
        await job.run()

    assert metric("colonnade_stock_ledger_drift_skus") == 1
    [alarm] = [e for e in logs if e["event"] == "inventory.stock_ledger_drift"]
    assert alarm["log_level"] == "error"
    assert alarm["skus"] == ["TEE"]


async def test_an_expired_reservation_returns_to_stock_without_any_request(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, reservation_ttl_seconds=10)
    async with started(settings) as app, client(app) as http:
        shop: Shop = app.state.shop
        sku = await product(shop, on_hand=1)
        await shop.identity.create_staff("ops@shop.test", PASSWORD)
        token = await http.post(
            "/auth/token", data={"username": "ops@shop.test", "password": PASSWORD}
        )
        staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
        # A checkout took the last unit and its process never came back to finish it.
        held = await shop.inventory.reserve("checkout-abandoned", [(sku, 1)])
        first = await http.get(f"/admin/inventory/{sku}", headers=staff)
        assert first.json()["available"] == 0

        deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
        available = 0
        while available == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1)
            level = await http.get(f"/admin/inventory/{sku}", headers=staff)
            assert level.status_code == 200, level.text
            available = level.json()["available"]

        assert available == 1
        assert level.json()["reserved"] == 0
        assert (await shop.inventory.reservation(held.id)).status.value == "expired"
