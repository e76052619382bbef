"""Real databases for every test that needs one: SQLite always, PostgreSQL where it runs;
and the real Redis for the tests of what processes share through it.

Locally, PostgreSQL tests skip when no server answers; in CI (CI=true) or with
COLONNADE_REQUIRE_POSTGRES=1 a missing server fails them instead. Redis likewise, with
COLONNADE_REQUIRE_REDIS=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from colonnade.kernel.clock import SystemClock
from colonnade.kernel.crypto import Keyring, decode_master_key, new_master_key
from colonnade.kernel.db import Database
from colonnade.kernel.metrics import DB_QUERY_DURATION
from colonnade.kernel.shared_state import connect
from colonnade.migrations import upgrade
from colonnade.modules import MODULES


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist starts its workers with COLUMNS=80 and LINES=24 set, and a Rich console
    made while they are (the CLI's, on import) keeps that width for good. Without them the
    width is read at each print, so a test that sets COLUMNS gets the width it asks for."""
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
    # Each shop a test starts would leave the minutes it answered in its warehouse directory
    # (for a PostgreSQL test, beside the repository): the tests of those minutes turn it on.
    os.environ.setdefault("COLONNADE_ANALYTICS_ROUTE_MINUTES", "false")


POSTGRES_ADMIN_DSN = os.environ.get(
    "COLONNADE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = (
    os.environ.get("CI") == "true" or os.environ.get("COLONNADE_REQUIRE_POSTGRES") == "1"
)
REDIS_URL = os.environ.get("COLONNADE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("CI") == "true" or os.environ.get("COLONNADE_REQUIRE_REDIS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _postgres_answers() -> bool:
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


class PostgresServer:
    """Creates throw-away databases on the test server and drops them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_database(self, prefix: str = "colonnade_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"

        async def create() -> None:
            conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        self.created.append(name)
        return POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        async def drop() -> None:
            conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
            try:
                for name in self.created:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        if self.created:
            asyncio.run(drop())


def _needed(answers: bool, message: str, required: bool) -> None:
    """Skip a test whose service does not answer, or fail it where the service is required."""
    if answers:
        return
    if required:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    _needed(
        asyncio.run(_postgres_answers()),
        f"PostgreSQL does not answer at {POSTGRES_ADMIN_DSN}",
        REQUIRE_POSTGRES,
    )
    server = PostgresServer()
    yield server
    server.drop_all()


def _migrate(url: str) -> None:
    async def run() -> None:
        db = Database(url)
        try:
            await upgrade(db, MODULES)
        finally:
            await db.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy, which is faster than migrating anew."""
    path = tmp_path_factory.mktemp("template") / "colonnade.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    url = sqlalchemy_url(postgres.create_database())
    _migrate(url)
    return url


def _tables() -> str:
    return (
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version'"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "colonnade.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")

    async def truncate() -> None:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            names = [r[0] for r in await conn.fetch(_tables())]
            if names:
                await conn.execute(
                    "TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"
                )
        finally:
            await conn.close()

    asyncio.run(truncate())
    return url


async def _redis_answers() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()
    return True


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis's URL, once it answers."""
    _needed(asyncio.run(_redis_answers()), f"Redis does not answer at {REDIS_URL}", REQUIRE_REDIS)
    return REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; afterwards its keys, and no others, are deleted."""
    prefix = f"colonnade:test:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients with their own connections, as two processes of the shop have."""
    clients = (
        connect(redis_url, timeout_seconds=2.0),
        connect(redis_url, timeout_seconds=2.0),
    )
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def statements_run(*operations: str) -> int:
    """Statements the shop has run in this process so far, of these operations (select,
    insert, update, delete; all four when none is named), as the shop's own metric counts
    them: SQLAlchemy's statements and the hot path's driver statements alike."""
    wanted = set(operations) or {"select", "insert", "update", "delete"}
    return int(
        sum(
            sample.value
            for metric in DB_QUERY_DURATION.collect()
            for sample in metric.samples
            if sample.name.endswith("_count") and sample.labels["operation"] in wanted
        )
    )


async def count_rows(db: Database, table: str) -> int:
    async with db.reading() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608


@pytest.fixture
async def keyring(db: Database) -> Keyring:
    """The field-encryption keys of the test database, under a fresh master key."""
    ring = Keyring(db, decode_master_key(new_master_key()), clock=SystemClock())
    await ring.load()
    return ring


NATS_URL = os.environ.get("COLONNADE_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("CI") == "true" or os.environ.get("COLONNADE_REQUIRE_NATS") == "1"


async def _nats_answers(url: str) -> bool:
    try:
        client = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0)
    except (OSError, nats.errors.Error):
        return False
    try:
        await client.jetstream().account_info()
    except nats.errors.Error:
        return False  # a server without JetStream
    finally:
        await client.close()
    return True


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server with JetStream that the distributed-shape tests share."""
    _needed(
        asyncio.run(_nats_answers(NATS_URL)),
        f"NATS with JetStream does not answer at {NATS_URL}",
        REQUIRE_NATS,
    )
    return NATS_URL


@pytest.fixture
def bus_namespace(nats_url: str) -> Iterator[str]:
    """Streams and consumers of this test's own, removed at its end."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield namespace

    async def remove() -> None:
        client = await nats.connect(nats_url)
        try:
            jetstream = client.jetstream()
            for name in await jetstream.streams_info():
                if name.config.name and name.config.name.startswith(namespace.upper() + "_"):
                    await jetstream.delete_stream(name.config.name)
        finally:
            await client.close()

    asyncio.run(remove())


class OwnNats:
    """A `nats-server -js` of the test's own, on its own port and store, to stop and start."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = store
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self._process = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self._store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Polled by plain connects: a test may restart it from inside its event loop.
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def own_nats(nats_url: str, tmp_path: Path) -> Iterator[OwnNats]:
    server = OwnNats(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()
