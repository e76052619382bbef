"""analytics: facts waiting for the warehouse

Revision ID: analytics_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "analytics_0001"
down_revision = None
branch_labels = ("analytics",)
depends_on = None


def upgrade() -> None:
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
        sa.Column("batch", sa.String(36), nullable=True),
    )
    op.create_index("ix_analytics_staged_facts_batch", "analytics_staged_facts", ["batch"])


def downgrade() -> None:
    op.drop_table("analytics_staged_facts")
