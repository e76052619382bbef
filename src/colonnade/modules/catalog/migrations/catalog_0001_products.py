"""catalog: categories, products, variants, translations and their search index

Revision ID: catalog_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "catalog_0001"
down_revision = None
branch_labels = ("catalog",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_categories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("catalog_categories.id"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "catalog_category_names",
        sa.Column(
            "category_id", sa.Integer, sa.ForeignKey("catalog_categories.id"), nullable=False
        ),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("category_id", "locale", name="pk_catalog_category_names"),
    )
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("default_locale", sa.String(35), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("category_id", sa.Integer, sa.ForeignKey("catalog_categories.id"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("status IN ('draft', 'published')", name="ck_catalog_products_status"),
    )
    op.create_index(
        "ix_catalog_products_listing", "catalog_products", ["status", "created_at", "id"]
    )
    op.create_index("ix_catalog_products_category", "catalog_products", ["category_id"])
    op.create_table(
        "catalog_variants",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column(
            "product_id", sa.String(36), sa.ForeignKey("catalog_products.id"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
    )
    op.create_index("ix_catalog_variants_product", "catalog_variants", ["product_id", "position"])
    op.create_table(
        "catalog_translations",
        sa.Column(
            "product_id", sa.String(36), sa.ForeignKey("catalog_products.id"), nullable=False
        ),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("product_id", "locale", name="pk_catalog_translations"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The service's search condition repeats this expression word for word, so the
        # planner can use the index.
        op.execute(
            "CREATE INDEX ix_catalog_translations_search ON catalog_translations USING gin "
            "(to_tsvector('simple', title || ' ' || coalesce(description, '')))"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE catalog_search USING fts5("
            "product_id UNINDEXED, locale UNINDEXED, body, tokenize = 'unicode61')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_catalog_translations_search", "catalog_translations")
    else:
        op.execute("DROP TABLE catalog_search")
    op.drop_table("catalog_translations")
    op.drop_index("ix_catalog_variants_product", "catalog_variants")
    op.drop_table("catalog_variants")
    op.drop_index("ix_catalog_products_category", "catalog_products")
    op.drop_index("ix_catalog_products_listing", "catalog_products")
    op.drop_table("catalog_products")
    op.drop_table("catalog_category_names")
    op.drop_table("catalog_categories")
