"""The warehouse's files: facts as Parquet (pyarrow), one directory per day, read with DuckDB.

    <root>/facts/day=2026-11-27/part-<batch>.parquet
    <root>/routes/day=2026-11-27/part-<process>-<first minute>-<id>.parquet
    <root>/system/day=2026-11-27/part-<process>-<first minute>-<id>.parquet

`routes` and `system` hold the system's side. `routes`: per minute, process and route, the
requests answered, the server errors, and a row per latency bucket with the answers it holds.
`system`: per minute, process and measure, its reading (checkouts per outcome, the outbox's
highest lag, database connections in use at the most and the pool's size).

The layout is the one ClickHouse, BigQuery or DuckDB itself load as they are (hive-style
partitions by day). A file is written beside its final name and renamed into place, so a
reader sees a whole file or none. Every function here blocks: callers run them off the loop.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from colonnade.kernel.ids import new_id
from colonnade.modules.analytics.domain import (
    Fact,
    LineSales,
    MeasureAt,
    OrdersAt,
    OutcomeCount,
    RouteAt,
    RouteCount,
    RouteMinute,
    StockOutRow,
    SystemMinute,
)

# Staged batches still in the table (packed facts), each with the sealing that claimed it
# (None: not yet).
Staged = Sequence[tuple[str | None, bytes]]

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("order_id", pa.string()),
        ("market", pa.string()),
        ("currency", pa.string()),
        ("amount", pa.int64()),
        ("units", pa.int32()),
        ("sku", pa.string()),
        ("code", pa.string()),
        ("reason", pa.string()),
        ("customer", pa.string()),
    ]
)
ROUTES_SCHEMA = pa.schema(
    [
        ("minute", pa.timestamp("us", tz="UTC")),
        ("process", pa.string()),
        ("route", pa.string()),
        # A latency bucket's upper bound in seconds (inf for the last); null on the row of
        # the route's requests and errors.
        ("le", pa.float64()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("answers", pa.int64()),
    ]
)

SYSTEM_SCHEMA = pa.schema(
    [
        ("minute", pa.timestamp("us", tz="UTC")),
        ("process", pa.string()),
        ("measure", pa.string()),
        ("label", pa.string()),
        ("value", pa.float64()),
    ]
)

# Columns files written before them lack, read as empty.
_ADDED_LATER = ("code", "reason", "customer")

# Every fact, sealed or staged (`facts`), and the orders paid (`paid`): what each question
# starts from. The kinds are domain's (PLACED, LINE, PAID...), as the files keep them.
_FACTS = """
WITH facts AS (SELECT * FROM sealed UNION ALL SELECT * FROM staged),
paid AS (SELECT DISTINCT order_id FROM facts WHERE kind = 'order_paid')"""

# The paid orders placed in [$start, $end), of one market or all (NULL): `sold`.
_SOLD = (
    _FACTS  # noqa: S608 - fixed text, the values are bound
    + """,
placed AS (
    SELECT order_id, occurred_at, market, currency, amount FROM facts
    WHERE kind = 'order_placed' AND occurred_at >= $start AND occurred_at < $end
      AND ($market IS NULL OR market = $market)
),
sold AS (SELECT placed.* FROM placed JOIN paid USING (order_id))
"""
)

# Per currency: how many, their totals and what has been refunded of them.
_SALES = (
    _SOLD  # noqa: S608 - fixed text, the values are bound
    + """
, refunds AS (
    SELECT order_id, sum(amount) AS refunded FROM facts
    WHERE kind = 'order_refunded' GROUP BY order_id
)
SELECT s.currency, count(*), sum(s.amount), coalesce(sum(r.refunded), 0)
FROM sold AS s LEFT JOIN refunds AS r USING (order_id)
GROUP BY s.currency
"""
)

# Per bucket of $step seconds (its start in epoch seconds) and currency: orders, revenue.
_REVENUE = (
    _SOLD
    + """
SELECT CAST(floor(epoch(occurred_at) / $step) * $step AS BIGINT), currency, count(*), sum(amount)
FROM sold GROUP BY ALL
"""
)

# Per SKU and currency, the most units first: units, what the lines cost.
_PRODUCTS = (
    _SOLD
    + """
SELECT l.sku, l.currency, sum(l.units), sum(l.amount)
FROM facts AS l SEMI JOIN sold USING (order_id)
WHERE l.kind = 'order_line'
GROUP BY ALL ORDER BY 3 DESC, 4 DESC, 1, 2 LIMIT $limit
"""
)


# Carts started, orders placed (and of those paid) and checkouts refused in [$start, $end),
# of one market or all: OutcomeCount rows. A refusal of no known cart's market is left out.
_OUTCOMES = (
    _FACTS  # noqa: S608 - fixed text, the values are bound
    + """,
happened AS (
    SELECT kind, market, code, reason, order_id FROM facts
    WHERE kind IN ('cart_started', 'order_placed', 'checkout_refused')
      AND occurred_at >= $start AND occurred_at < $end
      AND market <> '' AND ($market IS NULL OR market = $market)
)
SELECT h.market, h.kind, h.code, h.reason, count(*), count(p.order_id)
FROM happened AS h LEFT JOIN paid AS p ON h.kind = 'order_placed' AND p.order_id = h.order_id
GROUP BY ALL
"""
)

# SKUs that sold out in [$start, $end), each from its first stock-out to the first restock
# after it (stock-outs before that restock are the same one), with what paid orders of one
# market or all bought of it per currency in the $before up to it (the sale that took the
# last unit included): StockOutRow rows.
_STOCK_OUTS = (
    _FACTS  # noqa: S608 - fixed text, the values are bound
    + """,
outs AS (
    SELECT o.sku, o.occurred_at AS began, (
        SELECT min(r.occurred_at) FROM facts AS r
        WHERE r.kind = 'restock' AND r.sku = o.sku AND r.occurred_at > o.occurred_at
    ) AS ended
    FROM facts AS o WHERE o.kind = 'stock_out'
),
periods AS (SELECT sku, min(began) AS began, ended FROM outs GROUP BY sku, ended),
shown AS (SELECT * FROM periods WHERE began >= $start AND began < $end),
demand AS (
    SELECT s.sku, s.began, l.currency, sum(l.units) AS units, sum(l.amount) AS revenue
    FROM shown AS s JOIN facts AS l
      ON l.kind = 'order_line' AND l.sku = s.sku
     AND l.occurred_at > s.began - $before AND l.occurred_at <= s.began
    WHERE l.order_id IN (SELECT order_id FROM paid)
      AND ($market IS NULL OR l.market = $market)
    GROUP BY ALL
)
SELECT s.sku, s.began, s.ended, coalesce(d.currency, ''), coalesce(d.units, 0),
       coalesce(d.revenue, 0)
FROM shown AS s LEFT JOIN demand AS d USING (sku, began)
"""
)

# Per market, of the paid orders placed in [$start, $end): the customers who placed them (as
# pseudonyms), those whose first paid order ever it was, and the orders of customers and of
# guests (or erased customers). Every day's facts are read: a first order may be years old.
_CUSTOMERS = (
    _FACTS  # noqa: S608 - fixed text, the values are bound
    + """,
sold AS (
    SELECT order_id, occurred_at, market, customer FROM facts
    WHERE kind = 'order_placed' AND order_id IN (SELECT order_id FROM paid)
),
firsts AS (
    SELECT customer, min(occurred_at) AS first FROM sold WHERE customer <> '' GROUP BY customer
),
shown AS (
    SELECT * FROM sold
    WHERE occurred_at >= $start AND occurred_at < $end AND ($market IS NULL OR market = $market)
)
SELECT s.market,
       count(DISTINCT s.customer) FILTER (WHERE s.customer <> ''),
       count(DISTINCT s.customer) FILTER (WHERE f.first >= $start),
       count(*) FILTER (WHERE s.customer <> ''),
       count(*) FILTER (WHERE s.customer = '')
FROM shown AS s LEFT JOIN firsts AS f USING (customer)
GROUP BY s.market
"""
)

# Per market and UTC hour (its start in epoch seconds): paid orders placed in [$start, $end).
_HOURLY = (
    _FACTS  # noqa: S608 - fixed text, the values are bound
    + """
SELECT market, CAST(floor(epoch(occurred_at) / 3600) * 3600 AS BIGINT), count(*)
FROM facts
WHERE kind = 'order_placed' AND occurred_at >= $start AND occurred_at < $end
  AND ($market IS NULL OR market = $market) AND order_id IN (SELECT order_id FROM paid)
GROUP BY ALL
"""
)

# Per route and side of $split (in the window's later part or not), over [$start, $end): the
# requests, the server errors, and per latency bucket the answers.
_ROUTES = """
SELECT route, minute >= $split AS later, sum(requests), sum(errors), le, sum(answers)
FROM minutes WHERE minute >= $start AND minute < $end
GROUP BY ALL
"""

# The timeline's three sides, by step of $step seconds over [$start, $end): paid orders placed
# per market; the $route's requests, errors and answers per latency bucket; the readings of
# the machinery, summed over processes per minute (the outbox's lag: the highest), then
# summed over the step's minutes (checkouts) or the highest of them.
_ORDERS_AT = (
    _SOLD
    + """
SELECT CAST(floor(epoch(occurred_at) / $step) * $step AS BIGINT), market, count(*)
FROM sold GROUP BY ALL
"""
)
_ROUTE_AT = """
SELECT CAST(floor(epoch(minute) / $step) * $step AS BIGINT), sum(requests), sum(errors), le,
       sum(answers)
FROM minutes WHERE minute >= $start AND minute < $end AND route = $route
GROUP BY ALL
"""
_MEASURES_AT = """
WITH per_minute AS (
    SELECT minute, measure, label,
           CASE WHEN measure = 'outbox_lag_seconds' THEN max(value) ELSE sum(value) END AS value
    FROM readings WHERE minute >= $start AND minute < $end
    GROUP BY minute, measure, label
)
SELECT CAST(floor(epoch(minute) / $step) * $step AS BIGINT), measure, label,
       CASE WHEN measure = 'checkouts' THEN sum(value) ELSE max(value) END
FROM per_minute GROUP BY 1, measure, label
"""

# Per market, SKU, currency and side of $split (placed before it or not): units and what the
# lines cost.
_LINES = (
    _SOLD
    + """
SELECT l.occurred_at >= $split, l.market, l.sku, l.currency, sum(l.units), sum(l.amount)
FROM facts AS l SEMI JOIN sold USING (order_id)
WHERE l.kind = 'order_line'
GROUP BY ALL
"""
)


class Warehouse:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.facts = root / "facts"

    def write(self, batch: str, facts: pa.Table) -> list[Path]:
        """The batch's facts as one file per day, each fact once (a fact told twice is the
        same fact); writing the same batch again replaces its files with the same content."""
        facts = _each_once(facts)
        days = _days(facts)
        written = []
        for day in sorted(set(days.to_pylist())):
            directory = self.facts / f"day={day}"
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / f"part-{batch}.parquet"
            _write_atomically(facts.filter(pc.equal(days, day)), target)
            written.append(target)
        return written

    def files_from(self, first_day: date) -> list[Path]:
        """The facts' files of `first_day` and every later day."""
        return _parts(self.facts, first_day)

    def sales(
        self, staged: Staged, start: datetime, end: datetime, market: str | None
    ) -> list[tuple[str, int, int, int]]:
        """(currency, orders, revenue, refunded) for paid orders placed in [start, end)."""
        rows = self._ask(_SALES, staged, start, end, market)
        return [(str(c), int(n), int(revenue), int(refunded)) for c, n, revenue, refunded in rows]

    def revenue(
        self, staged: Staged, start: datetime, end: datetime, market: str | None, step: int
    ) -> list[tuple[int, str, int, int]]:
        """(bucket start in epoch seconds, currency, orders, revenue) per `step` seconds."""
        rows = self._ask(_REVENUE, staged, start, end, market, step=step)
        return [(int(b), str(c), int(n), int(revenue)) for b, c, n, revenue in rows]

    def products(
        self, staged: Staged, start: datetime, end: datetime, market: str | None, limit: int
    ) -> list[tuple[str, str, int, int]]:
        """(sku, currency, units, revenue) of the lines of paid orders, most units first."""
        rows = self._ask(_PRODUCTS, staged, start, end, market, limit=limit)
        return [(str(sku), str(c), int(units), int(revenue)) for sku, c, units, revenue in rows]

    def lines(
        self, staged: Staged, start: datetime, end: datetime, market: str | None, split: datetime
    ) -> list[tuple[bool, LineSales]]:
        """Whether placed at `split` or later, and (market, sku, currency, units, revenue), of
        the lines of paid orders."""
        rows = self._ask(_LINES, staged, start, end, market, split=split)
        return [
            (bool(later), (str(m), str(sku), str(c), int(u), int(r)))
            for later, m, sku, c, u, r in rows
        ]

    def outcomes(
        self, staged: Staged, start: datetime, end: datetime, market: str | None
    ) -> list[OutcomeCount]:
        """(market, kind, code, reason, facts, paid) of the checkout funnel's facts."""
        rows = self._ask(_OUTCOMES, staged, start, end, market)
        return [
            (str(m), str(kind), str(code), str(reason), int(n), int(paid))
            for m, kind, code, reason, n, paid in rows
        ]

    def hourly(
        self, staged: Staged, start: datetime, end: datetime, market: str | None
    ) -> list[tuple[str, datetime, int]]:
        """(market, hour, paid orders placed in it) of [start, end)."""
        rows = self._ask(_HOURLY, staged, start, end, market)
        return [(str(m), datetime.fromtimestamp(int(at), UTC), int(n)) for m, at, n in rows]

    def customers(
        self, staged: Staged, start: datetime, end: datetime, market: str | None
    ) -> list[tuple[str, int, int, int, int]]:
        """(market, customers, new customers, customers' orders, guests' orders) of the paid
        orders placed in [start, end)."""
        rows = self._ask(_CUSTOMERS, staged, start, end, market, first_day=date.min)
        return [(str(m), int(c), int(n), int(o), int(g)) for m, c, n, o, g in rows]

    def stock_outs(
        self,
        staged: Staged,
        start: datetime,
        end: datetime,
        market: str | None,
        before: timedelta,
    ) -> list[StockOutRow]:
        """(sku, sold out at, back at, currency, units, revenue) of stock-outs begun in
        [start, end) and the demand `before` them."""
        first_day = (start - before).date()
        rows = self._ask(_STOCK_OUTS, staged, start, end, market, first_day, before=before)
        return [
            (str(sku), _utc(began), None if ended is None else _utc(ended), str(c), int(u), int(r))
            for sku, began, ended, c, u, r in rows
        ]

    def _ask(
        self,
        query: str,
        staged: Staged,
        start: datetime,
        end: datetime,
        market: str | None,
        first_day: date | None = None,
        **more: int | datetime | timedelta,
    ) -> list[Any]:
        """`query` over the files and the `staged` facts (with the batch each was claimed by,
        if any), read before the files were listed: a staged fact whose batch's file is listed
        is in it, and one whose file is not listed yet is still in the table. Facts of a day
        before the window's cannot be of an order placed in it: those files are not read
        (from `first_day` when a question looks further back); every later day's are (a
        stock-out's restock may come after the window's end)."""
        with duckdb.connect() as db:
            self._facts(db, staged, first_day or start.date())
            parameters = {"start": start, "end": end, "market": market, **more}
            return db.execute(query, parameters).fetchall()

    def _facts(self, db: duckdb.DuckDBPyConnection, staged: Staged, first_day: date) -> None:
        """`staged` and `sealed` in `db`: the facts still in the table, and the files from
        `first_day` on (see _ask)."""
        files = self.files_from(first_day)
        listed = {(path.parent.name.removeprefix("day="), path.name) for path in files}
        waiting = []
        for batch, packed in staged:
            facts = unpacked(packed)
            if batch is not None:
                sealed_days = [day for day, name in listed if name == f"part-{batch}.parquet"]
                facts = facts.filter(
                    pc.invert(pc.is_in(_days(facts), pa.array(sealed_days, pa.string())))
                )
            waiting.append(facts)
        db.register("staged", _each_once(pa.concat_tables([table_of([]), *waiting])))
        if files:
            found = db.read_parquet([str(f) for f in files], union_by_name=True)
            found.project(_columns(found.columns)).create_view("sealed")
        else:
            db.register("sealed", table_of([]))

    def write_minutes(
        self, process: str, minutes: Sequence[RouteMinute], readings: Sequence[SystemMinute]
    ) -> list[Path]:
        """One process's route minutes and readings as new files per day, named by the
        process and the first minute (and made unique: a process may write a minute twice)."""
        return [
            *_by_minute(self.root / "routes", process, minutes, _minutes_table),
            *_by_minute(self.root / "system", process, readings, _readings_table),
        ]

    def routes(
        self, start: datetime, end: datetime, split: datetime, unwritten: Sequence[RouteMinute]
    ) -> list[RouteCount]:
        """(route, at or after `split`, requests, errors, answers per bucket) in [start, end),
        from the files and the `unwritten` minutes."""
        with duckdb.connect() as db:
            _view(db, "minutes", self.root / "routes", start, end, _minutes_table(unwritten))
            rows = db.execute(_ROUTES, {"start": start, "end": end, "split": split}).fetchall()
        counts: dict[tuple[str, bool], list[Any]] = {}
        for route, later, requests, errors, le, answers in rows:
            found = counts.setdefault((str(route), bool(later)), [0, 0, []])
            if le is None:
                found[0] += int(requests)
                found[1] += int(errors)
            elif answers:
                found[2].append((float(le), int(answers)))
        return [
            (route, later, requests, errors, tuple(sorted(buckets)))
            for (route, later), (requests, errors, buckets) in sorted(counts.items())
        ]

    def timeline(
        self,
        staged: Staged,
        start: datetime,
        end: datetime,
        step: int,
        market: str | None,
        route: str,
        minutes: Sequence[RouteMinute],
        readings: Sequence[SystemMinute],
    ) -> tuple[list[OrdersAt], list[RouteAt], list[MeasureAt]]:
        """The timeline's rows (see _ORDERS_AT), over the files and what is not written yet,
        in one session."""
        with duckdb.connect() as db:
            self._facts(db, staged, start.date())
            _view(db, "minutes", self.root / "routes", start, end, _minutes_table(minutes))
            _view(db, "readings", self.root / "system", start, end, _readings_table(readings))
            window = {"start": start, "end": end, "step": step}
            orders = db.execute(_ORDERS_AT, {**window, "market": market}).fetchall()
            route_rows = db.execute(_ROUTE_AT, {**window, "route": route}).fetchall()
            measures = db.execute(_MEASURES_AT, window).fetchall()
        return (
            [(int(at), str(m), int(n)) for at, m, n in orders],
            [
                (int(at), int(r), int(e), None if le is None else float(le), int(a))
                for at, r, e, le, a in route_rows
            ],
            [(int(at), str(m), str(label), float(v)) for at, m, label, v in measures],
        )

    def forget(self, kinds: Collection[str]) -> None:
        """Every fact of these kinds gone from the files; the rest stay as they were. A file
        is rewritten beside its name and renamed into place, or removed when nothing stays."""
        if not self.facts.is_dir():
            return
        for path in sorted(self.facts.glob("day=*/part-*.parquet")):
            table = pq.read_table(path)
            kept = without(table, kinds)
            if kept.num_rows == table.num_rows:
                continue
            if kept.num_rows:
                _write_atomically(kept, path)
            else:
                path.unlink()
                _sync_directory(path.parent)


def _parts(directory: Path, first_day: date, last_day: date | None = None) -> list[Path]:
    """The files of `directory`'s days from `first_day` to `last_day` (or the last there is)."""
    if not directory.is_dir():
        return []
    last = last_day.isoformat() if last_day is not None else "9999-12-31"
    return sorted(
        path
        for day in directory.glob("day=*")
        if first_day.isoformat() <= day.name.removeprefix("day=") <= last
        for path in day.glob("part-*.parquet")
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _view(
    db: duckdb.DuckDBPyConnection,
    name: str,
    directory: Path,
    start: datetime,
    end: datetime,
    fresh: pa.Table,
) -> None:
    """`name`: the files of `directory`'s days of [start, end], and the `fresh` rows."""
    files = _parts(directory, start.date(), end.date())
    rows = db.from_arrow(fresh)
    if files:
        rows = db.read_parquet([str(f) for f in files]).union(rows)
    rows.create_view(name)


def _by_minute(
    directory: Path,
    process: str,
    rows: Sequence[RouteMinute] | Sequence[SystemMinute],
    table: Callable[[Any], pa.Table],
) -> list[Path]:
    by_day: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_day[row.minute.astimezone(UTC).date().isoformat()].append(row)
    written = []
    for day, days_rows in sorted(by_day.items()):
        first = int(min(row.minute for row in days_rows).timestamp())
        (directory / f"day={day}").mkdir(parents=True, exist_ok=True)
        target = directory / f"day={day}" / f"part-{process}-{first}-{new_id()}.parquet"
        _write_atomically(table(days_rows), target)
        written.append(target)
    return written


def _readings_table(readings: Sequence[SystemMinute]) -> pa.Table:
    return pa.Table.from_pydict(
        {name: [getattr(r, name) for r in readings] for name in SYSTEM_SCHEMA.names},
        schema=SYSTEM_SCHEMA,
    )


def _minutes_table(minutes: Sequence[RouteMinute]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for m in minutes:
        at = m.minute.astimezone(UTC)
        rows.append(
            {
                "minute": at,
                "process": m.process,
                "route": m.route,
                "le": None,
                "requests": m.requests,
                "errors": m.errors,
                "answers": 0,
            }
        )
        rows += [
            {
                "minute": at,
                "process": m.process,
                "route": m.route,
                "le": bound,
                "requests": 0,
                "errors": 0,
                "answers": answers,
            }
            for bound, answers in m.buckets
        ]
    return pa.Table.from_pylist(rows, schema=ROUTES_SCHEMA)


def _columns(present: Sequence[str]) -> str:
    """The schema's columns, in its order, from files some of which may predate a column."""
    return ", ".join(
        name
        if name not in _ADDED_LATER
        else f"coalesce({name}, '') AS {name}"
        if name in present
        else f"'' AS {name}"
        for name in SCHEMA.names
    )


def table_of(facts: Sequence[Fact]) -> pa.Table:
    """The facts as the files' columns (built a column at a time: a consumer packs every
    batch it takes)."""
    return pa.Table.from_pydict(
        {name: [getattr(fact, name) for fact in facts] for name in SCHEMA.names}, schema=SCHEMA
    )


def packed(facts: pa.Table) -> bytes:
    """Facts as a staged batch keeps them: an Arrow IPC stream, written and read whole."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as stream:
        stream.write_table(facts)
    return bytes(sink.getvalue().to_pybytes())


def unpacked(packed_facts: bytes) -> pa.Table:
    return pa.ipc.open_stream(packed_facts).read_all()


def without(facts: pa.Table, kinds: Collection[str]) -> pa.Table:
    """The facts of other kinds."""
    return facts.filter(pc.invert(pc.is_in(facts["kind"], pa.array(sorted(kinds)))))


def _days(facts: pa.Table) -> pa.ChunkedArray:
    """Each fact's day (UTC), as its directory names it."""
    return pc.strftime(facts["occurred_at"], format="%Y-%m-%d")


def _each_once(facts: pa.Table) -> pa.Table:
    """The first of the facts that share an id: a rebuild may stage again an order's fact
    that its event staged meanwhile."""
    numbered = facts.append_column("row", pa.array(range(facts.num_rows), pa.int64()))
    first = numbered.group_by("id", use_threads=False).aggregate([("row", "min")])
    if first.num_rows == facts.num_rows:
        return facts
    rows = first["row_min"]
    return facts.take(pc.take(rows, pc.sort_indices(rows)))


def _write_atomically(table: pa.Table, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    pq.write_table(table, partial)
    with partial.open("rb") as written_file:
        os.fsync(written_file.fileno())
    partial.replace(target)
    _sync_directory(target.parent)


def _sync_directory(directory: Path) -> None:
    """The rename itself survives a power cut once the directory is synced."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
