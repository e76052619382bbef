"""orders: refunds by line, prorated, each unit refunded once

Revision ID: orders_0004
Revises: orders_0003
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "orders_0004"
down_revision = "orders_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a rebuild of the lines table would trip over its foreign key.
    op.add_column(
        "orders_lines",
        sa.Column("refunded_quantity", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "orders_line_refunds",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("refund_key", sa.String(200), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "refund_key", "sku", name="pk_orders_line_refunds"),
        sa.CheckConstraint("quantity > 0 AND amount >= 0", name="ck_orders_line_refunds"),
    )


def downgrade() -> None:
    op.drop_table("orders_line_refunds")
    op.drop_column("orders_lines", "refunded_quantity")
