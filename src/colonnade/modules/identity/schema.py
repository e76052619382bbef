"""The identity module's tables.

A customer's e-mail and name are personal data: they are stored encrypted (kernel field
encryption) and found through a keyed blind index of the normalised e-mail. Staff e-mails
and names stay readable: they are the shop's own operators, not customers' personal data.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, String, Table, Text

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
    Column("roles", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

customers = Table(
    "identity_customers",
    metadata,
    Column("id", String(36), primary_key=True),
    # Emptied by erasure, so the e-mail address can register again.
    Column("email_index", String(64), nullable=True, unique=True),
    Column("email", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("password_hash", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("erased_at", UTCDateTime, nullable=True),
)

consents = Table(
    "identity_consents",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

consent_history = Table(
    "identity_consent_history",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), nullable=False, index=True),
    Column("purpose", String(64), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    # The client address the change came from: personal data, so encrypted.
    Column("source", Text, nullable=True),
)

refresh_tokens = Table(
    "identity_refresh_tokens",
    metadata,
    # SHA-256 of the token: the token itself is never stored.
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("subject", String(36), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("spent_at", UTCDateTime, nullable=True),
)

login_throttles = Table(
    "identity_login_throttles",
    metadata,
    # The e-mail's blind index: works for addresses without an account and names nobody.
    Column("email_index", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UTCDateTime, nullable=True),
    Column("locked_until", UTCDateTime, nullable=True),
)

api_keys = Table(
    "identity_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    # SHA-256 of the secret part: the key is shown once and never stored.
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)
