"""Which process runs the relay and the consumers: apart from `colonnade serve` only on a
broker; the relay and worker commands refuse to run without one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from colonnade.app import database_url, modules_served, remote_modules
from colonnade.cli import cli
from colonnade.kernel.settings import Settings


@pytest.mark.parametrize("setting", ["serve_relay", "serve_consumers"])
def test_the_relay_and_consumers_leave_serve_only_on_a_broker(setting: str) -> None:
    with pytest.raises(ValidationError, match="only with COLONNADE_BUS_URL"):
        Settings(**{setting: False})
    alone = Settings(**{setting: False, "bus_url": "nats://127.0.0.1:4222"})
    assert getattr(alone, setting) is False


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["serve", "--no-relay"], "only with COLONNADE_BUS_URL"),
        (["serve", "--no-consumers"], "only with COLONNADE_BUS_URL"),
        (["serve", "--modules", "catalog,shipping"], "no such modules: shipping"),
        (["relay"], "The relay alone needs COLONNADE_BUS_URL"),
        (["worker"], "A worker needs COLONNADE_BUS_URL"),
    ],
)
def test_without_a_broker_the_split_roles_refuse_to_start(
    command: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLONNADE_BUS_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    # `serve` hands its choices to its workers through the environment: set here, they are
    # put back after the test.
    for name in ("SERVE_RELAY", "SERVE_CONSUMERS", "SERVE_MODULES", "SETTLE_HEAP"):
        monkeypatch.setenv(f"COLONNADE_{name}", "" if name == "SERVE_MODULES" else "true")

    ran = CliRunner().invoke(cli, command)

    assert ran.exit_code == 2, ran.output
    assert says in " ".join(ran.output.split())


def test_a_worker_names_only_modules_the_shop_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLONNADE_BUS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("COLUMNS", "250")

    ran = CliRunner().invoke(cli, ["worker", "--modules", "notifications,shipping"])

    assert ran.exit_code == 2, ran.output
    assert "No such modules: shipping" in ran.output


def test_modules_called_elsewhere_must_be_callable_there() -> None:
    bus = "nats://127.0.0.1:4222"
    with pytest.raises(ValueError, match="no remote adapter for shipping"):
        remote_modules(Settings(remote_modules="pricing,shipping", bus_url=bus))
    with pytest.raises(ValidationError, match="inventory in another process needs PostgreSQL"):
        Settings(
            remote_modules="inventory", bus_url=bus, database_url="sqlite+aiosqlite:///shop.db"
        )
    on_postgresql = Settings(
        remote_modules="inventory,pricing", bus_url=bus, database_url="postgresql+asyncpg://db/s"
    )
    assert remote_modules(on_postgresql) == {"inventory", "pricing"}


def test_inventory_on_a_database_of_its_own_is_served_by_a_process_of_its_own() -> None:
    shop = {
        "bus_url": "nats://127.0.0.1:4222",
        "database_url": "postgresql+asyncpg://db/shop",
        "inventory_database_url": "postgresql+asyncpg://stock-db/stock",
    }
    stockroom = Settings(**shop, serve_modules="inventory")
    assert database_url(stockroom) == "postgresql+asyncpg://stock-db/stock"
    # It asks the catalog, on the shop's database, whether a SKU it stocks exists.
    assert remote_modules(stockroom) == {"catalog"}
    everything_else = Settings(**shop)
    assert "inventory" not in modules_served(everything_else)
    assert database_url(everything_else) == "postgresql+asyncpg://db/shop"
    assert remote_modules(everything_else) == {"inventory"}
    with pytest.raises(ValueError, match=r"a process of its own .* not with catalog"):
        database_url(Settings(**shop, serve_modules="inventory,catalog"))
    with pytest.raises(ValidationError, match="INVENTORY_DATABASE_URL needs COLONNADE_BUS_URL"):
        Settings(**{**shop, "bus_url": None})
    # Two SQLite files: the stockroom's writer is not the shop's.
    assert Settings(
        bus_url="nats://127.0.0.1:4222",
        database_url="sqlite+aiosqlite:///shop.db",
        inventory_database_url="sqlite+aiosqlite:///stock.db",
        remote_modules="inventory",
    ).inventory_elsewhere
