"""pricing: markets, prices per SKU and currency, exchange rates

Revision ID: pricing_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "pricing_0001"
down_revision = None
branch_labels = ("pricing",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pricing_markets",
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("locale", sa.String(40), nullable=False),
        sa.Column("tax_inclusive", sa.Boolean, nullable=False),
        sa.Column("tax_rate", sa.String(20), nullable=False),
    )
    op.create_table(
        "pricing_prices",
        sa.Column("sku", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("sku", "currency", name="pk_pricing_prices"),
        sa.CheckConstraint("amount >= 0", name="ck_pricing_prices_amount"),
    )
    op.create_table(
        "pricing_fx_rates",
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("quote_currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("base_currency", "quote_currency", name="pk_pricing_fx_rates"),
    )


def downgrade() -> None:
    op.drop_table("pricing_fx_rates")
    op.drop_table("pricing_prices")
    op.drop_table("pricing_markets")
