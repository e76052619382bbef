"""Product search on each database: an FTS5 table on SQLite, a GIN-indexed tsvector
expression on PostgreSQL. Shoppers' text reaches the database only as bound tokens that
domain.search_tokens has stripped down to letters and digits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, Select, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.modules.catalog import domain
from colonnade.modules.catalog.schema import search, translations

# How many products a search walks in listing order, beyond the page's own reach, before it
# asks the index instead: a common phrase fills its page long before, and a phrase rare enough
# to need the index has few matches to sort.
WALK = 1000

# Word for word the expression of ix_catalog_translations_search, so the index is used.
_PG_DOCUMENT = (
    "to_tsvector('simple', catalog_translations.title || ' ' || "
    "coalesce(catalog_translations.description, ''))"
)
# PostgreSQL's parser splits a word by what it sees around it: "86E02F639B" alone is the
# number 86e02 and the word f639b, but inside "TEST-86E02F639B" it stays one word. The tokens
# are matched both ways, parsed as the text around them would be and as they are, so a code
# is found however the document wrote it.
_PG_MATCH = text(
    f"({_PG_DOCUMENT} @@ to_tsquery('simple', :catalog_tsquery)"
    f" OR {_PG_DOCUMENT} @@ CAST(:catalog_lexemes AS tsquery))"
)
_FTS5_MATCH = text("catalog_search MATCH :catalog_match")


def _pg_match(tokens: list[str]) -> Any:
    return _PG_MATCH.bindparams(
        catalog_tsquery=domain.tsquery(tokens), catalog_lexemes=domain.tsquery_lexemes(tokens)
    )


def matching_products(dialect: str, tokens: list[str]) -> Select[tuple[str]]:
    """Ids of products with a translation, in any locale, that has every token as a prefix."""
    if dialect == "postgresql":
        return select(translations.c.product_id).where(_pg_match(tokens))
    return select(search.c.product_id).where(
        _FTS5_MATCH.bindparams(catalog_match=domain.fts5_query(tokens))
    )


async def walk_to_matches(
    conn: AsyncConnection,
    listed: Select[Any],
    tokens: list[str],
    limit: int,
    offset: int,
) -> Sequence[Row[Any]] | None:
    """PostgreSQL: the page of `listed` (unordered) whose translations match, found by testing
    products one by one in listing order until the page is full, so a phrase with thousands of
    matches costs a few dozen tests instead of fetching and sorting every match. None when the
    walk ends before the page is full; the index then finds the (few) matches."""
    window = WALK + 20 * (offset + limit)
    walked = (
        listed.order_by(listed.selected_columns.created_at, listed.selected_columns.id)
        .limit(window)
        .subquery("walked")
    )
    # A correlated count, not EXISTS: the planner would turn EXISTS into a join over every match.
    matches = (
        select(func.count())
        .select_from(translations)
        .where(
            translations.c.product_id == walked.c.id,
            _pg_match(tokens),
        )
        .scalar_subquery()
    )
    # A walk shorter than its window saw every product: what it found is all there is.
    walked_all = select(func.count()).select_from(walked).scalar_subquery() < window
    rows = (
        await conn.execute(
            select(walked, walked_all.label("walked_all"))
            .where(matches > 0)
            .order_by(walked.c.created_at, walked.c.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return rows if len(rows) == limit or (rows and rows[0].walked_all) else None


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
