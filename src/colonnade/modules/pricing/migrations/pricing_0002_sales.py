"""pricing: scheduled sales, their SKUs and sale prices

Revision ID: pricing_0002
Revises: pricing_0001
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "pricing_0002"
down_revision = "pricing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pricing_sales",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("market", sa.String(10), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("percent_off", sa.Integer, nullable=True),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 99)",
            name="ck_pricing_sales_percent",
        ),
    )
    op.create_index("ix_pricing_sales_market", "pricing_sales", ["market", "ends_at"])
    op.create_table(
        "pricing_sale_prices",
        sa.Column("sale_id", sa.String(36), sa.ForeignKey("pricing_sales.id"), nullable=False),
        sa.Column("sku", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("sale_id", "sku", name="pk_pricing_sale_prices"),
        sa.CheckConstraint("amount IS NULL OR amount >= 0", name="ck_pricing_sale_prices_amount"),
    )
    op.create_index("ix_pricing_sale_prices_sku", "pricing_sale_prices", ["sku"])


def downgrade() -> None:
    op.drop_index("ix_pricing_sale_prices_sku", "pricing_sale_prices")
    op.drop_table("pricing_sale_prices")
    op.drop_index("ix_pricing_sales_market", "pricing_sales")
    op.drop_table("pricing_sales")
