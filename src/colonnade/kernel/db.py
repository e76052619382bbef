"""The database: one async SQLAlchemy engine per process, SQLite (WAL) or PostgreSQL.

Writes go through a unit of work (`Database.transaction`). On SQLite a write transaction
starts with BEGIN IMMEDIATE, so it takes the write lock up front instead of failing when a
reader tries to upgrade; an in-process lock queues our own writers so they wait in order
instead of polling SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from colonnade.kernel.bulk import json_text
from colonnade.kernel.metrics import DB_POOL_CONNECTIONS, DB_POOL_SIZE, query_timer
from colonnade.kernel.uow import Read, UnitOfWork, read

_IMMEDIATE = "colonnade_immediate"


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        sqlite_synchronous: str = "FULL",
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = (
            _sqlite_engine(url, sqlite_synchronous)
            if self.is_sqlite
            else _server_engine(url, pool_size)
        )
        _measure(self.engine)
        # PostgreSQL reads at READ COMMITTED: every statement sees its own snapshot whether or
        # not a transaction wraps it, so reads skip BEGIN and COMMIT (two round trips each).
        self._reader: AsyncEngine | None = (
            None if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._on_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def after_commit_with_events(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each commit that wrote outbox events (wakes the relay)."""
        self._on_commit.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: commit explicitly; leaving the block without commit rolls back."""
        if self._write_lock is None:
            async with self.engine.connect() as conn, _rolling_back(conn, self._notify) as uow:
                yield uow
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.execution_options(**{_IMMEDIATE: True})
            async with _rolling_back(conn, self._notify) as uow:
                yield uow

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, nothing written. On SQLite its statements share one
        snapshot; on PostgreSQL (READ COMMITTED) each statement sees the latest commits."""
        if self._reader is not None:
            async with self._reader.connect() as conn:
                yield conn
            return
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def read(self, query: Read, *arguments: Any) -> list[Any]:
        """One read of fixed text, straight on the driver in one round trip and outside any
        transaction: none of the statement building, caching and result processing a
        SQLAlchemy statement costs on every call, for the store's first reads of a page.
        Rows are tuples; on SQLite a time comes back as the text SQLite keeps (`stored_time`)."""
        async with (self._reader or self.engine).connect() as conn:
            return await read(conn, query, *arguments)

    def _notify(self) -> None:
        for callback in self._on_commit:
            callback()

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _rolling_back(
    conn: AsyncConnection, notify: Callable[[], None]
) -> AsyncIterator[UnitOfWork]:
    await conn.begin()
    uow = UnitOfWork(conn, notify)
    try:
        yield uow
    finally:
        if conn.in_transaction():
            await conn.rollback()


_STARTED = "colonnade.statement_started"
_OUT = "colonnade.checked_out"
_IN_USE = DB_POOL_CONNECTIONS.labels("in_use")
_IDLE = DB_POOL_CONNECTIONS.labels("idle")


def _measure(engine: AsyncEngine) -> None:
    """Time every statement by its operation, and follow the pool's connections.

    Connections are counted by the pool's own events: a new one is idle until checked out,
    a checked-in one is idle again, a closed one (also an invalidated one, which is then
    checked in without a connection) leaves the pool.
    """
    sync = engine.sync_engine
    size = getattr(sync.pool, "size", None)
    if callable(size):
        DB_POOL_SIZE.set(size())

    @event.listens_for(sync, "before_cursor_execute")
    def _started(conn: Connection, *_: Any) -> None:
        conn.info[_STARTED] = perf_counter()

    @event.listens_for(sync, "after_cursor_execute")
    def _finished(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            query_timer(statement).observe(perf_counter() - started)

    @event.listens_for(sync, "connect")
    def _opened(*_: Any) -> None:
        _IDLE.inc()

    @event.listens_for(sync, "checkout")
    def _checked_out(_connection: Any, record: Any, _proxy: Any) -> None:
        record.info[_OUT] = True
        _IDLE.dec()
        _IN_USE.inc()

    @event.listens_for(sync, "checkin")
    def _checked_in(_connection: Any, record: Any) -> None:
        # The pool also checks in a connection it failed to open again at checkout (the
        # database was gone): that one was never counted out, nor is it idle.
        if record.info.pop(_OUT, False):
            _IN_USE.dec()
            _IDLE.inc()

    @event.listens_for(sync, "close")
    def _closed(*_: Any) -> None:
        _IDLE.dec()


def _sqlite_engine(url: str, synchronous: str) -> AsyncEngine:
    database = url.split(":///", 1)[1] if ":///" in url else ""
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        # Connections are reset by _reset below, only when there is something to undo.
        pool_reset_on_return=None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection: Any, _record: ConnectionPoolEntry, state: PoolResetState) -> None:
        # A rollback costs a trip to the driver's thread; a connection given back outside a
        # transaction (a plain read's, or one whose transaction ended) has nothing to undo.
        if state.asyncio_safe and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _server_engine(url: str, pool_size: int) -> AsyncEngine:
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql+asyncpg"):
        # Short OLTP statements: the JIT only adds planning time.
        connect_args["server_settings"] = {"jit": "off"}
        # A batch's statements differ by its size (IN lists, VALUES rows): keep enough of
        # them prepared that a busy shop does not prepare them again and again.
        connect_args["prepared_statement_cache_size"] = _STATEMENTS_KEPT
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # The most recently used connection goes out first, so the few a steady load needs
        # stay warm: each prepares its statements, and PostgreSQL plans them, once per
        # connection, not once per connection of a round robin.
        pool_use_lifo=True,
        pool_pre_ping=False,
        connect_args=connect_args,
        query_cache_size=_STATEMENTS_KEPT,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )


_STATEMENTS_KEPT = 2000
