"""The compliance module's tables.

The audit log is append-only in the database itself (triggers, see the migrations): rows are
never deleted, and the only change allowed is clearing a row's payload and salt on erasure
(or re-encrypting the payload under a newer key). The head row holds where the chain ends, so
removing rows from the tail is noticed too.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

audit_log = Table(
    "compliance_audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(64), nullable=True),
    # Empty when the actor is a customer: their address is personal data and lives in the
    # (erasable) payload instead.
    Column("client_address", String(64), nullable=True),
    Column("action", String(300), nullable=False),
    # Canonical JSON of the path parameters, kept as text so the hash is over exactly it.
    Column("target", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("subject_customer_id", String(64), nullable=True, index=True),
    # Encrypted canonical JSON {"before", "after"[, "client_address"]}; cleared by erasure.
    Column("payload", Text, nullable=True),
    Column("salt", String(64), nullable=True),
    Column("payload_digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

audit_head = Table(
    "compliance_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

erasures = Table(
    "compliance_erasures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("requested_by_kind", String(16), nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("erased_at", UTCDateTime, nullable=False),
    Column("orders_anonymized", Integer, nullable=False),
    Column("carts_forgotten", Integer, nullable=False),
    Column("audit_rows_cleared", Integer, nullable=False),
)
