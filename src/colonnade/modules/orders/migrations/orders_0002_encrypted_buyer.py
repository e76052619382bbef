"""orders: the buyer's e-mail and address encrypted, found by a blind index

Revision ID: orders_0002
Revises: orders_0001

The plain `email` and `shipping_address` columns are dropped, not converted: a migration
holds no encryption key, and no shop ran with plain personal data in production. Orders
already in a database keep everything but those two (like an anonymized order); the
migration works the same on an empty table and a full one. Columns are dropped with a plain
ALTER TABLE (SQLite 3.35+ drops in place); see upgrade() for why not a batch rebuild.
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_orders_orders_email", "orders_orders")
    # Plain ALTER TABLE, not a batch rebuild: SQLite drops a column in place (3.35+), while a
    # rebuild of a table that lines and history point at fails on their foreign keys.
    op.drop_column("orders_orders", "email")
    op.drop_column("orders_orders", "shipping_address")
    with op.batch_alter_table("orders_orders") as batch:
        batch.add_column(sa.Column("email_encrypted", sa.Text, nullable=True))
        batch.add_column(sa.Column("email_index", sa.String(64), nullable=True))
        batch.add_column(sa.Column("shipping_address_encrypted", sa.Text, nullable=True))
        batch.add_column(sa.Column("anonymized_at", UTCDateTime, nullable=True))
    op.create_index("ix_orders_orders_email_index", "orders_orders", ["email_index", "placed_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_orders_email_index", "orders_orders")
    for name in ("anonymized_at", "shipping_address_encrypted", "email_index", "email_encrypted"):
        op.drop_column("orders_orders", name)
    with op.batch_alter_table("orders_orders") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("shipping_address", sa.JSON, nullable=False, server_default="{}")
        )
    op.create_index("ix_orders_orders_email", "orders_orders", ["email", "placed_at"])
