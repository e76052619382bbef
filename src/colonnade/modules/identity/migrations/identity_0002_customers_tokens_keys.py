"""identity: customers, consents, refresh tokens, login throttles, API keys, staff roles

Revision ID: identity_0002
Revises: identity_0001
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_staff") as batch:
        batch.add_column(sa.Column("roles", sa.JSON, nullable=False, server_default="[]"))
    op.create_table(
        "identity_customers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email_index", sa.String(64), nullable=True, unique=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "identity_consents",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "identity_consent_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_identity_consent_history_customer_id", "identity_consent_history", ["customer_id"]
    )
    op.create_table(
        "identity_refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("spent_at", UTCDateTime, nullable=True),
    )
    op.create_index(
        "ix_identity_refresh_tokens_family_id", "identity_refresh_tokens", ["family_id"]
    )
    op.create_index("ix_identity_refresh_tokens_subject", "identity_refresh_tokens", ["subject"])
    op.create_table(
        "identity_login_throttles",
        sa.Column("email_index", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", UTCDateTime, nullable=True),
        sa.Column("locked_until", UTCDateTime, nullable=True),
    )
    op.create_table(
        "identity_api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("identity_api_keys")
    op.drop_table("identity_login_throttles")
    op.drop_table("identity_refresh_tokens")
    op.drop_table("identity_consent_history")
    op.drop_table("identity_consents")
    op.drop_table("identity_customers")
    with op.batch_alter_table("identity_staff") as batch:
        batch.drop_column("roles")
