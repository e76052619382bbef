"""The identity module's tables."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, MetaData, String, Table

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

staff = Table(
    "identity_staff",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)
