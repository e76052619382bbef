"""A batch's rows into one table with one statement.

On PostgreSQL the rows travel as one array per column (`INSERT … SELECT … FROM unnest(…)`)
straight on asyncpg: one fixed statement text per table and column set, prepared once per
connection, whatever the batch's size. On SQLite they go through SQLAlchemy's executemany.
The statement is derived from the table's SQLAlchemy definition, so the columns are
declared once, in the module's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect

if TYPE_CHECKING:  # the unit of work writes its outbox rows with insert_rows
    from colonnade.kernel.uow import UnitOfWork

_DIALECT = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
_Key = tuple[str, tuple[str, ...], tuple[str, ...], str | None]
_statements: dict[_Key, tuple[str, tuple[bool, ...]]] = {}


async def insert_rows(
    uow: UnitOfWork,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    skip_conflicts_on: tuple[str, ...] = (),
    returning: str | None = None,
) -> list[Any]:
    """Insert `rows` (each with the same keys); rows that clash with one already there on
    the unique columns `skip_conflicts_on` are skipped. With `returning`, that column of
    each row inserted."""
    if not rows:
        return []
    if not uow.on_postgresql:
        statement: Any = sqlite.insert(table)
        if skip_conflicts_on:
            statement = statement.on_conflict_do_nothing(
                index_elements=[table.c[name] for name in skip_conflicts_on]
            )
        if returning is not None:
            statement = statement.returning(table.c[returning])
            return list((await uow.execute(statement, rows)).scalars().all())
        await uow.execute(statement, rows)
        return []
    columns = tuple(rows[0])
    sql, is_json = _statement(table, columns, skip_conflicts_on, returning)
    arrays = [
        [json_text(row[name]) for row in rows] if as_json else [row[name] for row in rows]
        for name, as_json in zip(columns, is_json, strict=True)
    ]
    found = await uow.fetch(sql, *arrays)
    return [row[0] for row in found] if returning is not None else []


def json_text(value: Any) -> str:
    """A JSON column's text, by orjson: every purchase writes several (events, answers)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _statement(
    table: Table,
    columns: tuple[str, ...],
    skip_conflicts_on: tuple[str, ...],
    returning: str | None,
) -> tuple[str, tuple[bool, ...]]:
    key = (table.name, columns, skip_conflicts_on, returning)
    if key not in _statements:
        quote = _DIALECT.identifier_preparer.quote
        is_json = tuple(isinstance(table.c[name].type, JSON) for name in columns)
        arrays = ", ".join(
            f"${n}::text[]" if as_json else f"${n}::{_array_type(table, name)}"
            for n, (name, as_json) in enumerate(zip(columns, is_json, strict=True), start=1)
        )
        picked = ", ".join(
            f"{quote(name)}::json" if as_json else quote(name)
            for name, as_json in zip(columns, is_json, strict=True)
        )
        names = ", ".join(quote(name) for name in columns)
        # Every name comes from the table's definition, none from a caller's data.
        sql = (
            f"INSERT INTO {quote(table.name)} ({names}) SELECT {picked}"  # noqa: S608
            f" FROM unnest({arrays}) AS r({names})"
        )
        if skip_conflicts_on:
            sql += f" ON CONFLICT ({', '.join(map(quote, skip_conflicts_on))}) DO NOTHING"
        if returning is not None:
            sql += f" RETURNING {quote(returning)}"
        _statements[key] = (sql, is_json)
    return _statements[key]


def _array_type(table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=_DIALECT)}[]"
