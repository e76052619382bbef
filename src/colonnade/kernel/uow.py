"""The unit of work: one transaction, the state it changes and the events it publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from colonnade.kernel import tracing
from colonnade.kernel.bulk import insert_rows, json_text
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.metrics import query_timer
from colonnade.kernel.schema import outbox

_driver_listeners: list[tuple[Any, Callable[[str], None]]] = []


def listen_to_driver_statements(
    engine: AsyncEngine, listener: Callable[[str], None]
) -> Callable[[], None]:
    """Call `listener(sql)` before each statement run straight on the driver (`read`,
    `UnitOfWork.fetch`, `execute_many`) on `engine`'s connections, as SQLAlchemy's
    `before_cursor_execute` event does for its own; returns the function that stops it."""
    entry = (engine.sync_engine.pool, listener)
    _driver_listeners.append(entry)
    return lambda: _driver_listeners.remove(entry)


def announce(connection: AsyncConnection, sql: str) -> None:
    """Tell the listeners of `connection`'s engine of a statement sent straight to the driver."""
    if _driver_listeners:
        pool = connection.sync_engine.pool
        for listening_to, listener in _driver_listeners:
            if listening_to is pool:
                listener(sql)


@dataclass(frozen=True)
class Read:
    """One read's text in each database's SQL. PostgreSQL's takes `$1`, `$2`… and a list as an
    array; SQLite's takes `?1`, `?2`… and a list as JSON text (read it with `json_each(?n)`)."""

    postgresql: str
    sqlite: str


async def read(connection: AsyncConnection, query: Read | str, *arguments: Any) -> list[Any]:
    """A plain read of fixed text straight on the driver, on any connection (a unit of work's
    or a reading one), in one round trip: none of the statement building, caching and result
    processing a SQLAlchemy statement costs on every call. A bare text is PostgreSQL's only
    (the hot path's). At READ COMMITTED a read sees the same inside or outside a transaction.
    Rows are tuples; on SQLite a time comes back as the text SQLite keeps (`stored_time`).
    Nothing that locks or writes goes here: use UnitOfWork.fetch."""
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if connection.dialect.name == "postgresql":
        sql = query if isinstance(query, str) else query.postgresql
        announce(connection, sql)
        started = perf_counter()
        rows: list[Any] = await driver.fetch(sql, *arguments)
    else:
        if isinstance(query, str):
            raise TypeError("a read on SQLite needs its SQLite text: pass a Read")
        sql = query.sqlite
        announce(connection, sql)
        started = perf_counter()
        rows = list(await driver.execute_fetchall(sql, [_sqlite(a) for a in arguments]))
    query_timer(sql).observe(perf_counter() - started)
    return rows


# How SQLAlchemy keeps a time on SQLite (UTCDateTime: UTC, no offset), so times compare as text.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def stored_time(value: str | datetime) -> datetime:
    """A time as `read` returns it on either database, as an aware UTC datetime."""
    found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _sqlite(argument: Any) -> Any:
    if isinstance(argument, list | tuple):
        return json_text(argument)
    if isinstance(argument, datetime):
        return argument.astimezone(UTC).strftime(_SQLITE_TIME)
    return argument


class UnitOfWork:
    """Events recorded here reach the outbox in the same transaction as the state they describe."""

    def __init__(
        self, connection: AsyncConnection, on_events_committed: Callable[[], None]
    ) -> None:
        self.connection = connection
        self._pending: list[Envelope] = []
        self._flushed = False
        self._on_events_committed = on_events_committed
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._begun = False
        self.on_postgresql = connection.dialect.name == "postgresql"

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        self._begun = True
        return await self.connection.execute(statement, parameters)

    async def fetch(self, sql: str, *arguments: Any) -> list[Any]:
        """Run one of the hot path's PostgreSQL statements (`$1` parameters) straight on
        asyncpg, inside this transaction: prepared once per connection, with none of the
        statement building, caching and parameter processing a SQLAlchemy statement costs
        on every call. Rows are tuples (read them by position)."""
        if not self._begun:
            result = await self._first(sql, tuple(arguments))
            return list(result) if result.returns_rows else []
        driver = await self._driver()
        announce(self.connection, sql)
        started = perf_counter()
        rows: list[Any] = await driver.fetch(sql, *arguments)
        query_timer(sql).observe(perf_counter() - started)
        return rows

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`fetch`'s kind of statement once per row, in the rows' order (which is the order
        their locks are taken in), sent together: asyncpg pipelines them in one round trip,
        counted as one statement, as SQLAlchemy's executemany is."""
        if not self._begun:
            await self._first(sql, [tuple(row) for row in rows])
            return
        driver = await self._driver()
        announce(self.connection, sql)
        started = perf_counter()
        await driver.executemany(sql, rows)
        query_timer(sql).observe(perf_counter() - started)

    async def _first(self, sql: str, parameters: Any) -> Any:
        """The transaction's first statement goes through SQLAlchemy, which opens the
        transaction with it (lazily, as it does for its own first statement); the driver
        is handed the text and parameters as they are."""
        self._begun = True
        return await self.connection.exec_driver_sql(sql, parameters)

    async def _driver(self) -> Any:
        raw = await self.connection.get_raw_connection()
        return raw.driver_connection

    def before_commit(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` as the transaction's last statements, after its events reach the
        outbox and just before COMMIT: a step that locks contended rows holds them only for
        itself and the commit. A step that raises rolls the whole transaction back."""
        self._before_commit.append(step)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (counting what it did, say),
        and never when it rolls back."""
        self._after_commit.append(callback)

    def record(self, event: Event, headers: dict[str, str] | None = None) -> Envelope:
        envelope = Envelope(
            event_type=event.event_type,
            payload=event.payload(),
            occurred_at=datetime.now(UTC),
            headers=dict(headers or {}),
        )
        # The trace that caused the event travels with it, to every consumer.
        tracing.stamp(envelope)
        self._pending.append(envelope)
        return envelope

    async def flush(self) -> None:
        """Write the events recorded so far to the outbox now, so that the transaction's last
        statement can be the one that takes a contended lock (held until commit)."""
        if not self._pending:
            return
        await insert_rows(
            self,
            outbox,
            [
                {
                    "event_id": e.event_id,
                    "event_type": e.event_type,
                    "payload": e.payload,
                    "headers": e.headers,
                    "occurred_at": e.occurred_at,
                    "next_attempt_at": e.occurred_at,
                    "attempts": 0,
                }
                for e in self._pending
            ],
        )
        self._pending.clear()
        self._flushed = True

    async def commit(self) -> None:
        await self.flush()
        for step in self._before_commit:
            await step()
        await self.flush()  # what the last steps recorded (rare: a stock-out, say)
        await self.connection.commit()
        if self._flushed:
            self._on_events_committed()
        for callback in self._after_commit:
            callback()
