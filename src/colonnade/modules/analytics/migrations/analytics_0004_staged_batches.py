"""analytics: facts staged a batch to a row

Revision ID: analytics_0004
Revises: analytics_0003

The facts waiting in analytics_staged_facts move, one row per sealing's batch (or one for
the unclaimed), into analytics_staged_batches as Arrow IPC streams of the warehouse's columns.
The columns are spelled out here as they were at this revision, not imported, so later
changes to the warehouse cannot change what this migration does.
"""

from collections import defaultdict
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from alembic import op

from colonnade.kernel.ids import new_id
from colonnade.kernel.types import UTCDateTime

revision = "analytics_0004"
down_revision = "analytics_0003"
branch_labels = None
depends_on = None

_TEXTS = ("id", "kind", "order_id", "market", "currency", "sku", "code", "reason", "customer")
_FACTS = pa.schema(
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
_staged_facts = sa.table(
    "analytics_staged_facts",
    *(sa.column(name, sa.String) for name in _TEXTS),
    sa.column("occurred_at", UTCDateTime),
    sa.column("amount", sa.BigInteger),
    sa.column("units", sa.Integer),
    sa.column("batch", sa.String),
)
_staged_batches = sa.table(
    "analytics_staged_batches",
    sa.column("id", sa.String),
    sa.column("facts", sa.LargeBinary),
    sa.column("facts_count", sa.Integer),
    sa.column("batch", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "analytics_staged_batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("facts", sa.LargeBinary, nullable=False),
        sa.Column("facts_count", sa.Integer, nullable=False),
        sa.Column("batch", sa.String(36), nullable=True),
    )
    op.create_index("ix_analytics_staged_batches_batch", "analytics_staged_batches", ["batch"])
    connection = op.get_bind()
    by_batch: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in connection.execute(sa.select(_staged_facts)).mappings():
        by_batch[row["batch"]].append({name: row[name] for name in _FACTS.names})
    for batch, facts in by_batch.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, _FACTS) as stream:
            stream.write_table(pa.Table.from_pylist(facts, schema=_FACTS))
        connection.execute(
            sa.insert(_staged_batches).values(
                id=new_id(),
                facts=sink.getvalue().to_pybytes(),
                facts_count=len(facts),
                batch=batch,
            )
        )
    op.drop_table("analytics_staged_facts")


def downgrade() -> None:
    op.create_table(
        "analytics_staged_facts",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("market", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False, server_default=""),
        sa.Column("reason", sa.String(120), nullable=False, server_default=""),
        sa.Column("customer", sa.String(36), nullable=False, server_default=""),
        sa.Column("batch", sa.String(36), nullable=True),
    )
    op.create_index("ix_analytics_staged_facts_batch", "analytics_staged_facts", ["batch"])
    connection = op.get_bind()
    seen: set[str] = set()
    for row in connection.execute(sa.select(_staged_batches)).mappings():
        facts = pa.ipc.open_stream(row["facts"]).read_all().to_pylist()
        fresh = [{**fact, "batch": row["batch"]} for fact in facts if fact["id"] not in seen]
        seen.update(fact["id"] for fact in fresh)
        if fresh:
            connection.execute(sa.insert(_staged_facts), fresh)
    op.drop_table("analytics_staged_batches")
