"""The store's reads of products as fixed SQL text, one statement each: the products of a page
with their variants and translations folded into JSON beside them, so a page costs one round
trip whatever its length, and the text never changes with it (prepared once on PostgreSQL)."""

from __future__ import annotations

from functools import cache

from colonnade.kernel.uow import Read

# Each product with every variant as [position, sku, attributes] and every translation as
# [locale, title, description], in each database's JSON functions.
_COLUMNS = {
    "postgresql": (
        "SELECT p.id, p.default_locale, p.status, c.slug,"
        " (SELECT json_agg(json_build_array(v.position, v.sku, v.attributes))"
        " FROM catalog_variants AS v WHERE v.product_id = p.id)::text,"
        " (SELECT json_agg(json_build_array(t.locale, t.title, t.description))"
        " FROM catalog_translations AS t WHERE t.product_id = p.id)::text"
    ),
    "sqlite": (
        "SELECT p.id, p.default_locale, p.status, c.slug,"
        " (SELECT json_group_array(json_array(v.position, v.sku, json(v.attributes)))"
        " FROM catalog_variants AS v WHERE v.product_id = p.id),"
        " (SELECT json_group_array(json_array(t.locale, t.title, t.description))"
        " FROM catalog_translations AS t WHERE t.product_id = p.id)"
    ),
}
_FROM = (
    " FROM catalog_products AS p LEFT OUTER JOIN catalog_categories AS c ON c.id = p.category_id"
)
# A category and its subcategories, however deep.
_IN_CATEGORY = (
    " AND p.category_id IN (WITH RECURSIVE tree(id) AS ("
    "SELECT id FROM catalog_categories WHERE slug = {slug}"
    " UNION ALL SELECT k.id FROM catalog_categories AS k JOIN tree ON k.parent_id = tree.id)"
    " SELECT id FROM tree)"
)
# SQLite's search table; PostgreSQL searches by search.walk_to_matches, then reads by id.
_MATCHING = (
    " AND p.id IN (SELECT product_id FROM catalog_search WHERE catalog_search MATCH {match})"
)


@cache
def listing(*, in_category: bool, matching: bool) -> Read:
    """Published products in creation order: parameters limit, offset, then the category's
    slug (in_category), then an FTS5 query (matching, SQLite only)."""

    def build(dialect: str, mark: str) -> str:
        numbers = iter(range(3, 5))
        sql = _COLUMNS[dialect] + _FROM + " WHERE p.status = 'published'"
        if in_category:
            sql += _IN_CATEGORY.format(slug=f"{mark}{next(numbers)}")
        if matching:
            sql += _MATCHING.format(match=f"{mark}{next(numbers)}")
        return sql + f" ORDER BY p.created_at, p.id LIMIT {mark}1 OFFSET {mark}2"

    return Read(postgresql=build("postgresql", "$"), sqlite=build("sqlite", "?"))


_PG_IDS = " WHERE p.id = ANY($1::varchar[])"
_SQLITE_IDS = " WHERE p.id IN (SELECT value FROM json_each(?1))"
# Products by id, published or not: parameter the ids.
BY_IDS = Read(
    postgresql=_COLUMNS["postgresql"] + _FROM + _PG_IDS,
    sqlite=_COLUMNS["sqlite"] + _FROM + _SQLITE_IDS,
)
