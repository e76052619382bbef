"""kernel: dead letters, and an index for pruning the inbox

Revision ID: kernel_0003
Revises: kernel_0002
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "kernel_0003"
down_revision = "kernel_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kernel_dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("consumers", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("parked_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_kernel_inbox_processed_at", "kernel_inbox", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_kernel_inbox_processed_at", "kernel_inbox")
    op.drop_table("kernel_dead_letters")
