"""Analytics' tables: the facts not yet written to the warehouse's Parquet files."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

# A fact waits here from the event that told it until it is sealed into a Parquet file. A
# sealing claims facts by setting `batch`, writes the batch's files, then deletes its rows;
# a sealing cut short is finished by the next, which writes the same files again.
staged_facts = Table(
    "analytics_staged_facts",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("market", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("units", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    # A refused checkout's problem code, and its reason where the problem gave one.
    Column("code", String(64), nullable=False, server_default=""),
    Column("reason", String(120), nullable=False, server_default=""),
    # The buyer's pseudonym (see analytics_customers); "" for a guest or an erased customer.
    Column("customer", String(36), nullable=False, server_default=""),
    Column("batch", String(36), nullable=True),
)
Index("ix_analytics_staged_facts_batch", staged_facts.c.batch)

# The one link from a customer to the pseudonym the warehouse knows them by: a random id, not
# derived from theirs. Their erasure empties `pseudonym` (the row stays, so an event told
# again later makes no new one), and the facts' pseudonym then names nobody.
customers = Table(
    "analytics_customers",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("pseudonym", String(36), nullable=True),
)
