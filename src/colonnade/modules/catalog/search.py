"""Product search on each database: an FTS5 table on SQLite, a GIN-indexed tsvector
expression on PostgreSQL. Shoppers' text reaches the database only as bound tokens that
domain.search_tokens has stripped down to letters and digits."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.modules.catalog import domain
from colonnade.modules.catalog.schema import search, translations

# Word for word the expression of ix_catalog_translations_search, so the index is used.
_PG_MATCH = text(
    "to_tsvector('simple', catalog_translations.title || ' ' || "
    "coalesce(catalog_translations.description, '')) @@ to_tsquery('simple', :catalog_tsquery)"
)
_FTS5_MATCH = text("catalog_search MATCH :catalog_match")


def matching_products(dialect: str, tokens: list[str]) -> Select[tuple[str]]:
    """Ids of products with a translation, in any locale, that has every token as a prefix."""
    if dialect == "postgresql":
        return select(translations.c.product_id).where(
            _PG_MATCH.bindparams(catalog_tsquery=domain.tsquery(tokens))
        )
    return select(search.c.product_id).where(
        _FTS5_MATCH.bindparams(catalog_match=domain.fts5_query(tokens))
    )


async def index_translations(
    conn: AsyncConnection, product_id: str, texts: Mapping[str, tuple[str, str | None]]
) -> None:
    """Keep the SQLite search table in step with the translations just written
    (PostgreSQL indexes the translations table itself)."""
    if conn.dialect.name == "postgresql" or not texts:
        return
    await conn.execute(
        delete(search).where(search.c.product_id == product_id, search.c.locale.in_(list(texts)))
    )
    await conn.execute(
        search.insert(),
        [
            {
                "product_id": product_id,
                "locale": locale,
                "body": domain.search_body(title, description),
            }
            for locale, (title, description) in texts.items()
        ],
    )
