"""cart: the discount code a shopper entered

Revision ID: cart_0002
Revises: cart_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "cart_0002"
down_revision = "cart_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: adding a nullable column needs no rebuild on SQLite, and a rebuild
    # would trip over the lines' foreign key.
    op.add_column("cart_carts", sa.Column("promotion_code", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("cart_carts", "promotion_code")
