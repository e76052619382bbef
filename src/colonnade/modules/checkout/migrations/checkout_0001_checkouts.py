"""checkout: the saga's checkouts

Revision ID: checkout_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "checkout_0001"
down_revision = None
branch_labels = ("checkout",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout_checkouts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("cart_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(20), nullable=False),
        sa.Column("reservation_id", sa.String(36)),
        sa.Column("payment_id", sa.String(36)),
        sa.Column("order_id", sa.String(36)),
        sa.Column("response_status", sa.Integer),
        sa.Column("response_body", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_checkout_checkouts_unfinished", "checkout_checkouts", ["step", "updated_at"]
    )


def downgrade() -> None:
    op.drop_table("checkout_checkouts")
