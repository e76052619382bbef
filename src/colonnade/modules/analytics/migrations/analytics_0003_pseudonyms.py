"""analytics: customers as pseudonyms

Revision ID: analytics_0003
Revises: analytics_0002

Facts staged before name no customer.
"""

import sqlalchemy as sa
from alembic import op

revision = "analytics_0003"
down_revision = "analytics_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analytics_staged_facts") as batch:
        batch.add_column(sa.Column("customer", sa.String(36), nullable=False, server_default=""))
    op.create_table(
        "analytics_customers",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("pseudonym", sa.String(36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("analytics_customers")
    with op.batch_alter_table("analytics_staged_facts") as batch:
        batch.drop_column("customer")
