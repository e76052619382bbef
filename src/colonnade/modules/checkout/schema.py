"""The checkout module's table: one row per Idempotency-Key, the saga's memory."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, Text

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

checkouts = Table(
    "checkout_checkouts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),
    Column("cart_id", String(36), nullable=False),
    Column("step", String(20), nullable=False),
    Column("reservation_id", String(36)),
    Column("payment_id", String(36)),
    Column("order_id", String(36)),
    Column("response_status", Integer),
    Column("response_body", JSON),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_checkout_checkouts_unfinished", checkouts.c.step, checkouts.c.updated_at)
