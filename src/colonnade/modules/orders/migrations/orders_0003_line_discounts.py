"""orders: what promotions took off each line, and which promotions

Revision ID: orders_0003
Revises: orders_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a rebuild of the lines table would trip over its foreign key.
    op.add_column(
        "orders_lines", sa.Column("discount", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column("orders_lines", sa.Column("promotions", sa.String(400), nullable=True))


def downgrade() -> None:
    op.drop_column("orders_lines", "promotions")
    op.drop_column("orders_lines", "discount")
