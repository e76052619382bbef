"""cart: carts and their lines

Revision ID: cart_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "cart_0001"
down_revision = None
branch_labels = ("cart",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cart_carts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tax_inclusive", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.CheckConstraint(
            "status IN ('open', 'checked_out', 'expired')", name="ck_cart_carts_status"
        ),
        sa.CheckConstraint("version >= 1", name="ck_cart_carts_version"),
    )
    op.create_index("ix_cart_carts_idle", "cart_carts", ["status", "updated_at"])
    op.create_index("ix_cart_carts_customer", "cart_carts", ["customer_id"])
    op.create_table(
        "cart_lines",
        sa.Column("cart_id", sa.String(36), sa.ForeignKey("cart_carts.id"), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("cart_id", "sku", name="pk_cart_lines"),
        sa.CheckConstraint("quantity > 0", name="ck_cart_lines_quantity"),
    )


def downgrade() -> None:
    op.drop_table("cart_lines")
    op.drop_index("ix_cart_carts_customer", "cart_carts")
    op.drop_index("ix_cart_carts_idle", "cart_carts")
    op.drop_table("cart_carts")
