"""A batch's rows into one table with one statement: inserted, or updated by their key.

On PostgreSQL the rows travel as one array per column (`INSERT … SELECT … FROM unnest(…)`,
`UPDATE … FROM unnest(…)`) straight on asyncpg: one fixed statement text per table and
column set, prepared once per connection, whatever the batch's size. On SQLite they go
through SQLAlchemy's executemany. The statement is derived from the table's SQLAlchemy
definition, so the columns are declared once, in the module's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Table, bindparam, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect

if TYPE_CHECKING:  # the unit of work writes its outbox rows with insert_rows
    from colonnade.kernel.uow import UnitOfWork

_DIALECT = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
_Key = tuple[str, str, tuple[str, ...], tuple[str, ...], str | None]
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
    found = await uow.fetch(sql, *_arrays(rows, columns, is_json))
    return [row[0] for row in found] if returning is not None else []


async def update_rows(
    uow: UnitOfWork, table: Table, rows: list[dict[str, Any]], *, key: str = "id"
) -> None:
    """Set each row's other columns on the row whose `key` column matches its `key` (every
    row with the same keys). The rows must already be this transaction's, or be written in
    an order that cannot deadlock: PostgreSQL takes their locks in the order it meets them."""
    if not rows:
        return
    columns = tuple(rows[0])
    if not uow.on_postgresql:
        # Bound names of their own: SQLAlchemy keeps the columns' names for itself.
        statement = (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values(
                {
                    name: bindparam(f"b_{name}", type_=table.c[name].type)
                    for name in columns
                    if name != key
                }
            )
        )
        await uow.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return
    sql, is_json = _update_statement(table, columns, key)
    await uow.fetch(sql, *_arrays(rows, columns, is_json))


def _arrays(
    rows: list[dict[str, Any]], columns: tuple[str, ...], is_json: tuple[bool, ...]
) -> list[list[Any]]:
    return [
        [json_text(row[name]) for row in rows] if as_json else [row[name] for row in rows]
        for name, as_json in zip(columns, is_json, strict=True)
    ]


def json_text(value: Any) -> str:
    """A JSON column's text, by orjson: every purchase writes several (events, answers)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _statement(
    table: Table,
    columns: tuple[str, ...],
    skip_conflicts_on: tuple[str, ...],
    returning: str | None,
) -> tuple[str, tuple[bool, ...]]:
    key = ("insert", table.name, columns, skip_conflicts_on, returning)
    if key not in _statements:
        quote = _DIALECT.identifier_preparer.quote
        rows, picked, is_json = _unnest(table, columns)
        names = ", ".join(quote(name) for name in columns)
        # Every name comes from the table's definition, none from a caller's data.
        sql = (
            f"INSERT INTO {quote(table.name)} ({names})"  # noqa: S608
            f" SELECT {', '.join(picked)} FROM {rows}"
        )
        if skip_conflicts_on:
            sql += f" ON CONFLICT ({', '.join(map(quote, skip_conflicts_on))}) DO NOTHING"
        if returning is not None:
            sql += f" RETURNING {quote(returning)}"
        _statements[key] = (sql, is_json)
    return _statements[key]


def _update_statement(
    table: Table, columns: tuple[str, ...], key_column: str
) -> tuple[str, tuple[bool, ...]]:
    key = ("update", table.name, columns, (key_column,), None)
    if key not in _statements:
        quote = _DIALECT.identifier_preparer.quote
        rows, picked, is_json = _unnest(table, columns)
        assignments = ", ".join(
            f"{quote(name)} = {value}"
            for name, value in zip(columns, picked, strict=True)
            if name != key_column
        )
        target = quote(table.name)
        sql = (
            f"UPDATE {target} SET {assignments} FROM {rows}"  # noqa: S608 - names from the table
            f" WHERE {target}.{quote(key_column)} = r.{quote(key_column)}"
        )
        _statements[key] = (sql, is_json)
    return _statements[key]


def _unnest(table: Table, columns: tuple[str, ...]) -> tuple[str, list[str], tuple[bool, ...]]:
    """`unnest(…) AS r(…)` of one array per column, how each column reads from it (JSON
    travels as text), and which columns are JSON."""
    quote = _DIALECT.identifier_preparer.quote
    is_json = tuple(isinstance(table.c[name].type, JSON) for name in columns)
    arrays = ", ".join(
        f"${n}::text[]" if as_json else f"${n}::{_array_type(table, name)}"
        for n, (name, as_json) in enumerate(zip(columns, is_json, strict=True), start=1)
    )
    picked = [
        f"r.{quote(name)}::json" if as_json else f"r.{quote(name)}"
        for name, as_json in zip(columns, is_json, strict=True)
    ]
    names = ", ".join(quote(name) for name in columns)
    return f"unnest({arrays}) AS r({names})", picked, is_json


def _array_type(table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=_DIALECT)}[]"
