"""promotions: automatic promotions, targets, buy X get Y, stacking, first orders

Revision ID: promotions_0003
Revises: promotions_0002

An automatic promotion has no code, so `code` may be empty. A checkout may now use several
promotions at once, so a use is keyed by the checkout and the promotion: the uses table is
made again with that key and its rows copied (SQLite cannot change a primary key in place).
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "promotions_0003"
down_revision = "promotions_0002"
branch_labels = None
depends_on = None

_COPY_USES = (
    "INSERT INTO promotions_uses_next (checkout_id, promotion_id, customer_id, currency, "
    "discount, total, used_at, code) SELECT checkout_id, promotion_id, customer_id, currency, "
    "discount, total, used_at, code FROM promotions_uses"
)


def upgrade() -> None:
    with op.batch_alter_table("promotions_promotions") as batch:
        batch.alter_column("code", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("target", sa.JSON, nullable=True))
        batch.add_column(sa.Column("buy_quantity", sa.Integer, nullable=True))
        batch.add_column(sa.Column("get_quantity", sa.Integer, nullable=True))
        for flag in ("combines", "first_order"):
            batch.add_column(sa.Column(flag, sa.Boolean, nullable=False, server_default=sa.false()))
    _remake_uses(("checkout_id", "promotion_id"))


def downgrade() -> None:
    # A checkout keeps one use: the other promotions' uses of a stacked checkout go.
    op.execute(
        "DELETE FROM promotions_uses WHERE promotion_id <> (SELECT MIN(u.promotion_id) FROM "
        "promotions_uses u WHERE u.checkout_id = promotions_uses.checkout_id)"
    )
    _remake_uses(("checkout_id",))
    op.execute("DELETE FROM promotions_promotions WHERE code IS NULL")
    with op.batch_alter_table("promotions_promotions") as batch:
        batch.drop_column("first_order")
        batch.drop_column("combines")
        batch.drop_column("get_quantity")
        batch.drop_column("buy_quantity")
        batch.drop_column("target")
        batch.alter_column("code", existing_type=sa.String(40), nullable=False)


def _remake_uses(key: tuple[str, ...]) -> None:
    op.create_table(
        "promotions_uses_next",
        sa.Column("checkout_id", sa.String(64), nullable=False),
        sa.Column("promotion_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=False),
        sa.Column("code", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint(*key, name=f"pk_promotions_uses_{len(key)}"),
        sa.CheckConstraint("discount >= 0 AND total >= 0", name=f"ck_promotions_uses_{len(key)}"),
    )
    op.execute(_COPY_USES)
    op.drop_index("ix_promotions_uses_promotion", "promotions_uses")
    op.drop_table("promotions_uses")
    op.rename_table("promotions_uses_next", "promotions_uses")
    op.create_index(
        "ix_promotions_uses_promotion", "promotions_uses", ["promotion_id", "customer_id"]
    )
