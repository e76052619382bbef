"""Notifications' tables: the record of every message sent.

The recipient's address is kept only encrypted, under a context bound to this column; the
customer id is kept so an erasure of that customer can find their messages.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table, Text

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

messages = Table(
    "notifications_messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("customer_id", String(64), nullable=True),
    # None once the customer is erased.
    Column("recipient_encrypted", Text, nullable=True),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    # The trace of the request that led to the message (32 hex digits), when traced.
    Column("trace_id", String(32), nullable=True),
)
Index("ix_notifications_messages_order", messages.c.order_id)
Index("ix_notifications_messages_customer", messages.c.customer_id)
