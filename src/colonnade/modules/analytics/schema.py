"""Analytics' tables: the facts not yet written to the warehouse's Parquet files, and the
customers' pseudonyms."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, String, Table

metadata = MetaData()

# Facts wait here from the events that told them until a sealing writes them to the
# warehouse's Parquet files: one row per batch of events a consumer took, its facts packed as
# one Arrow IPC stream (one row to write, however many facts; a row per fact capped what a
# busy shop could take). A sealing claims rows by setting `batch`, writes the batch's files,
# then deletes its rows; a sealing cut short is finished by the next, which writes the same
# files again.
staged_batches = Table(
    "analytics_staged_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("facts", LargeBinary, nullable=False),
    Column("facts_count", Integer, nullable=False),
    Column("batch", String(36), nullable=True),
)
Index("ix_analytics_staged_batches_batch", staged_batches.c.batch)

# The one link from a customer to the pseudonym the warehouse knows them by: a random id, not
# derived from theirs. Their erasure empties `pseudonym` (the row stays, so an event told
# again later makes no new one), and the facts' pseudonym then names nobody.
customers = Table(
    "analytics_customers",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("pseudonym", String(36), nullable=True),
)
