"""Catalog's tables. Search lives beside them: an FTS5 table on SQLite (catalog_search, kept
by the service) or a GIN expression index on catalog_translations on PostgreSQL; both are
created by the migration, not here, because neither is portable Core DDL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    column,
    table,
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

categories = Table(
    "catalog_categories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("parent_id", Integer, ForeignKey("catalog_categories.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

category_names = Table(
    "catalog_category_names",
    metadata,
    Column("category_id", Integer, ForeignKey("catalog_categories.id"), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("name", String(200), nullable=False),
    PrimaryKeyConstraint("category_id", "locale", name="pk_catalog_category_names"),
)

products = Table(
    "catalog_products",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("default_locale", String(35), nullable=False),
    Column("status", String(16), nullable=False),
    Column("category_id", Integer, ForeignKey("catalog_categories.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('draft', 'published')", name="ck_catalog_products_status"),
)
Index("ix_catalog_products_listing", products.c.status, products.c.created_at, products.c.id)
Index("ix_catalog_products_category", products.c.category_id)

variants = Table(
    "catalog_variants",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("product_id", String(36), ForeignKey("catalog_products.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("attributes", JSON, nullable=False),
)
Index("ix_catalog_variants_product", variants.c.product_id, variants.c.position)

translations = Table(
    "catalog_translations",
    metadata,
    Column("product_id", String(36), ForeignKey("catalog_products.id"), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=True),
    PrimaryKeyConstraint("product_id", "locale", name="pk_catalog_translations"),
)

# SQLite only: the FTS5 virtual table, one row per (product, locale).
search = table("catalog_search", column("product_id"), column("locale"), column("body"))
