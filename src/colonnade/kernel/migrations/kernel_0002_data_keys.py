"""kernel: data keys for field encryption

Revision ID: kernel_0002
Revises: kernel_0001
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "kernel_0002"
down_revision = "kernel_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kernel_data_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("wrapped_key", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kernel_data_keys")
