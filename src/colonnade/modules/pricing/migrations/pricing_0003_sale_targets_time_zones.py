"""pricing: sales of whole products and categories; each market's time zone

Revision ID: pricing_0003
Revises: pricing_0002

A sale made before keeps its SKUs and gets no target; a market made before keeps UTC until
staff give it its own time zone.
"""

import sqlalchemy as sa
from alembic import op

revision = "pricing_0003"
down_revision = "pricing_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pricing_sales") as batch:
        batch.add_column(sa.Column("target", sa.JSON, nullable=True))
    with op.batch_alter_table("pricing_markets") as batch:
        batch.add_column(
            sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC")
        )


def downgrade() -> None:
    # A sale that names no SKU prices nothing without its target: it goes.
    op.execute(
        "DELETE FROM pricing_sales WHERE target IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM pricing_sale_prices p WHERE p.sale_id = pricing_sales.id)"
    )
    with op.batch_alter_table("pricing_markets") as batch:
        batch.drop_column("time_zone")
    with op.batch_alter_table("pricing_sales") as batch:
        batch.drop_column("target")
