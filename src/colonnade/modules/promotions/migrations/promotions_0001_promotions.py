"""promotions: discount codes and their uses

Revision ID: promotions_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "promotions_0001"
down_revision = None
branch_labels = ("promotions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotions_promotions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("percent_off", sa.Integer, nullable=True),
        sa.Column("amount_off", sa.JSON, nullable=False),
        sa.Column("min_subtotal", sa.JSON, nullable=False),
        sa.Column("markets", sa.JSON, nullable=False),
        sa.Column("customers_only", sa.Boolean, nullable=False),
        sa.Column("usage_limit", sa.Integer, nullable=True),
        sa.Column("per_customer_limit", sa.Integer, nullable=True),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "used >= 0 AND (usage_limit IS NULL OR used <= usage_limit)",
            name="ck_promotions_promotions_used",
        ),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 100)",
            name="ck_promotions_promotions_percent",
        ),
    )
    op.create_table(
        "promotions_uses",
        sa.Column("checkout_id", sa.String(64), primary_key=True),
        sa.Column("promotion_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("discount >= 0 AND total >= 0", name="ck_promotions_uses_amounts"),
    )
    op.create_index(
        "ix_promotions_uses_promotion", "promotions_uses", ["promotion_id", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_promotions_uses_promotion", "promotions_uses")
    op.drop_table("promotions_uses")
    op.drop_table("promotions_promotions")
