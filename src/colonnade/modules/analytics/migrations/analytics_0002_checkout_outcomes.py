"""analytics: why a checkout was refused, for the funnel and the declines

Revision ID: analytics_0002
Revises: analytics_0001

Facts staged before tell no refusal: their code and reason are empty.
"""

import sqlalchemy as sa
from alembic import op

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analytics_staged_facts") as batch:
        batch.add_column(sa.Column("code", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("reason", sa.String(120), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("analytics_staged_facts") as batch:
        batch.drop_column("reason")
        batch.drop_column("code")
