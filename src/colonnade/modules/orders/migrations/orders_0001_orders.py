"""orders: orders, their lines and their history

Revision ID: orders_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "orders_0001"
down_revision = None
branch_labels = ("orders",)
depends_on = None

_STATUSES = "'placed', 'paid', 'fulfilled', 'shipped', 'delivered', 'cancelled', 'refunded'"


def upgrade() -> None:
    op.create_table(
        "orders_orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False, unique=True),
        sa.Column("checkout_id", sa.String(64), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal", sa.BigInteger, nullable=False),
        sa.Column("tax", sa.BigInteger, nullable=False),
        sa.Column("shipping", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("tax_inclusive", sa.Boolean, nullable=False),
        sa.Column("paid_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shipping_address", sa.JSON, nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=True),
        sa.Column("access_token_hash", sa.String(64), nullable=False),
        sa.Column("placed_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_orders_orders_status"),
        sa.CheckConstraint(
            "total = subtotal + shipping + CASE WHEN tax_inclusive THEN 0 ELSE tax END",
            name="ck_orders_orders_total",
        ),
        sa.CheckConstraint(
            "subtotal >= 0 AND tax >= 0 AND shipping >= 0", name="ck_orders_orders_amounts"
        ),
        sa.CheckConstraint(
            "paid_amount >= 0 AND refunded_amount >= 0 AND refunded_amount <= paid_amount",
            name="ck_orders_orders_refund",
        ),
    )
    op.create_index("ix_orders_orders_placed", "orders_orders", ["placed_at", "id"])
    op.create_index("ix_orders_orders_status", "orders_orders", ["status", "placed_at"])
    op.create_index("ix_orders_orders_email", "orders_orders", ["email", "placed_at"])
    op.create_index("ix_orders_orders_customer", "orders_orders", ["customer_id", "placed_at"])
    op.create_table(
        "orders_lines",
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders_orders.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("line_total", sa.BigInteger, nullable=False),
        sa.Column("tax", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_orders_lines"),
        sa.CheckConstraint("quantity > 0", name="ck_orders_lines_quantity"),
    )
    op.create_table(
        "orders_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders_orders.id"), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_orders_history_order", "orders_history", ["order_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_history_order", "orders_history")
    op.drop_table("orders_history")
    op.drop_table("orders_lines")
    op.drop_index("ix_orders_orders_customer", "orders_orders")
    op.drop_index("ix_orders_orders_email", "orders_orders")
    op.drop_index("ix_orders_orders_status", "orders_orders")
    op.drop_index("ix_orders_orders_placed", "orders_orders")
    op.drop_table("orders_orders")
