"""The kernel's own tables: the outbox, the inbox and the dead letters, present in every
module's database."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

outbox = Table(
    "kernel_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(120), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
)
Index(
    "ix_kernel_outbox_pending",
    outbox.c.next_attempt_at,
    postgresql_where=outbox.c.published_at.is_(None),
    sqlite_where=outbox.c.published_at.is_(None),
)

inbox = Table(
    "kernel_inbox",
    metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)
# For pruning old marks without reading the whole inbox.
Index("ix_kernel_inbox_processed_at", inbox.c.processed_at)

# Poison messages: events whose delivery failed too often, out of the outbox until replayed.
dead_letters = Table(
    "kernel_dead_letters",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(120), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    # The consumers that refused it, when the bus can tell.
    Column("consumers", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("parked_at", UTCDateTime, nullable=False),
)

# Data keys for field encryption, each wrapped (AES-GCM) by the master key from the environment.
data_keys = Table(
    "kernel_data_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("wrapped_key", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
