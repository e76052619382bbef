"""Readiness as an orchestrator probes it: a database that goes away turns /health/ready 503
within seconds, and 200 again when it comes back; so does a stuck outbox relay. The public
answer names nothing; the metrics port's /health/details names what fails.

PostgreSQL is reached through a small TCP proxy the test starts and kills, so the real server
keeps running for everyone else. A SQLite file cannot stop answering a connection that has it
open, but it can vanish from under the shop (its directory moved away), which would lose
everything written afterwards; readiness catches that."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.events import Envelope
from colonnade.kernel.settings import Settings
from tests.conftest import POSTGRES_ADMIN_DSN, PostgresServer, free_port, sqlalchemy_url
from tests.integration.storefront import SECRET, client, open_cart, product, started

DEADLINE = 30.0


class TcpProxy:
    """Forwards connections to a server; `kill` drops them all and stops listening."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def kill(self) -> None:
        assert self._server is not None
        self._server.close()
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()
        self._server = None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._streams.update({writer, upstream_writer})
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._streams.discard(writer)


async def readiness_becomes(
    http: httpx.AsyncClient, operations: httpx.AsyncClient, status: int
) -> httpx.Response:
    """Poll the public /health/ready until it answers `status` (fail after a generous
    deadline); then what the metrics port's /health/details says."""
    deadline = time.monotonic() + DEADLINE
    while True:
        answer = await http.get("/health/ready")
        if answer.status_code == status:
            assert "checks" not in answer.json(), answer.text
            details = await operations.get("/health/details")
            assert details.status_code == status, details.text
            return details
        assert time.monotonic() < deadline, f"still {answer.status_code}: {answer.text}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def shop_with_metrics_port(
    settings: Settings, *, us_tax: Decimal | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, httpx.AsyncClient]]:
    """The started app, a client of its public port and one of its metrics port."""
    port = free_port()
    settings = settings.model_copy(update={"metrics_port": port})
    async with (
        started(settings, us_tax=us_tax, metrics_listener=True) as app,
        client(app) as http,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as operations,
    ):
        yield app, http, operations


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    target = urlsplit(POSTGRES_ADMIN_DSN)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    yield proxy
    with contextlib.suppress(AssertionError):
        await proxy.kill()


@pytest.fixture
def postgres_dsn(postgres: PostgresServer) -> str:
    return postgres.create_database("colonnade_ready")


async def test_a_lost_postgresql_turns_readiness_503_and_back(
    postgres_dsn: str, proxy: TcpProxy
) -> None:
    dsn = urlsplit(postgres_dsn)
    through_proxy = dsn._replace(netloc=f"{dsn.username}@127.0.0.1:{proxy.port}").geturl()
    settings = Settings(database_url=sqlalchemy_url(through_proxy), secret_key=SECRET)
    async with shop_with_metrics_port(settings) as (_, http, operations):
        ready = await readiness_becomes(http, operations, 200)
        assert ready.json()["checks"] == {"database": "ok", "bus": "ok", "outbox_relay": "ok"}

        await proxy.kill()
        lost = time.monotonic()
        down = await readiness_becomes(http, operations, 503)

        assert time.monotonic() - lost < 15  # within seconds, not a connect timeout's minute
        problem = down.json()
        assert problem["code"] == "not_ready"
        assert problem["checks"]["database"].startswith("failing")
        assert "database" in problem["detail"]

        await proxy.start()
        back = await readiness_becomes(http, operations, 200)
        assert back.json()["checks"]["database"] == "ok"


async def test_a_sqlite_file_moved_away_turns_readiness_503_and_back(
    sqlite_template: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "colonnade.db")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{data / 'colonnade.db'}", secret_key=SECRET
    )
    async with shop_with_metrics_port(settings) as (_, http, operations):
        await readiness_becomes(http, operations, 200)

        data.rename(tmp_path / "elsewhere")
        down = await readiness_becomes(http, operations, 503)
        assert down.json()["checks"]["database"].startswith("failing")
        assert "database" in down.json()["detail"]

        (tmp_path / "elsewhere").rename(data)
        await readiness_becomes(http, operations, 200)


async def test_a_stuck_or_stopped_outbox_relay_is_not_ready(database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, outbox_stuck_seconds=1)
    async with shop_with_metrics_port(settings, us_tax=Decimal("0")) as (app, http, operations):
        shop = app.state.shop
        released = asyncio.Event()

        async def hangs(_: Envelope) -> None:
            await released.wait()

        # A consumer that never returns holds the relay inside its delivery of a cart change.
        shop.bus.subscribe("cart.CartUpdated", "test.hangs", hangs)
        await readiness_becomes(http, operations, 200)
        await open_cart(http, await product(shop))

        stuck = await readiness_becomes(http, operations, 503)
        assert stuck.json()["checks"]["outbox_relay"].startswith("stuck")
        assert stuck.json()["checks"]["database"] == "ok"

        released.set()
        await readiness_becomes(http, operations, 200)

        await shop.relay.stop()
        stopped = await readiness_becomes(http, operations, 503)
        assert stopped.json()["checks"]["outbox_relay"] == "stopped"
