"""notifications: the record of messages sent

Revision ID: notifications_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "notifications_0001"
down_revision = None
branch_labels = ("notifications",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("recipient_encrypted", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_notifications_messages_order", "notifications_messages", ["order_id"])
    op.create_index("ix_notifications_messages_customer", "notifications_messages", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_messages_customer", "notifications_messages")
    op.drop_index("ix_notifications_messages_order", "notifications_messages")
    op.drop_table("notifications_messages")
