"""promotions: batches of single-use codes

Revision ID: promotions_0002
Revises: promotions_0001
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "promotions_0002"
down_revision = "promotions_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("promotions_uses", sa.Column("code", sa.String(40), nullable=True))
    op.create_table(
        "promotions_codes",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("promotion_id", sa.String(36), nullable=False),
        sa.Column("checkout_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_promotions_codes_promotion", "promotions_codes", ["promotion_id", "checkout_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_promotions_codes_promotion", "promotions_codes")
    op.drop_table("promotions_codes")
    op.drop_column("promotions_uses", "code")
