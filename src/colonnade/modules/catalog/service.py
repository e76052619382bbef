"""Catalog's public use cases: products with their variants (SKUs) and translations,
categories, and localized, searchable listings for the store.

Every method is one transaction. The store's reads (a listing, a search, a product) are one
statement each whatever their length (see reads.py); a search on PostgreSQL is two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.cache import Recent, SharedReads
from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.ids import new_id
from colonnade.kernel.placements import Placement
from colonnade.modules.catalog import domain, reads, search
from colonnade.modules.catalog.domain import (
    CategoryCycle,
    CategoryNotFound,
    DuplicateSku,
    InvalidProduct,
    ProductNotFound,
    ProductStatus,
    UnknownCategory,
)
from colonnade.modules.catalog.events import CategoryChanged, ProductChanged, ProductPublished
from colonnade.modules.catalog.schema import (
    categories,
    category_names,
    products,
    translations,
    variants,
)

__all__ = [
    "CatalogService",
    "Category",
    "DuplicateSku",
    "LocalizedProduct",
    "NewProduct",
    "NewVariant",
    "Product",
    "ProductNotFound",
    "ProductStatus",
    "Variant",
]


KNOWN_SKU_SECONDS = 3600.0


@dataclass(frozen=True, kw_only=True)
class NewVariant:
    sku: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NewProduct:
    titles: dict[str, str]
    descriptions: dict[str, str] = field(default_factory=dict)
    default_locale: str
    variants: list[NewVariant]
    category: str | None = None
    status: str = "published"


@dataclass(frozen=True)
class Variant:
    sku: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Product:
    """A product with every translation, as staff see it."""

    id: str
    titles: dict[str, str]
    descriptions: dict[str, str]
    default_locale: str
    status: ProductStatus
    category: str | None
    variants: tuple[Variant, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LocalizedProduct:
    """A product as a shopper sees it: in one locale, the one actually used."""

    id: str
    title: str
    description: str | None
    locale: str
    category: str | None
    variants: tuple[Variant, ...]
    status: ProductStatus


@dataclass(frozen=True)
class Category:
    slug: str
    names: dict[str, str]
    parent: str | None


_product_columns = (
    products.c.id,
    products.c.default_locale,
    products.c.status,
    products.c.created_at,
    products.c.updated_at,
    categories.c.slug.label("category"),
)
_with_category = products.outerjoin(categories, products.c.category_id == categories.c.id)


class CatalogService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        reference_cache_seconds: float = 0.0,
        changes: Changes | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._changes = changes
        # Every checkout names its lines; titles change rarely.
        self._titles: Recent[tuple[str, str], str] = Recent(reference_cache_seconds)
        # Variants are never deleted, so a SKU once seen stays known: the entry cannot go stale.
        self._known_skus: Recent[str, bool] = Recent(KNOWN_SKU_SECONDS)
        # Checkouts of the same SKUs at the same moment share one read of their titles.
        self._title_reads: SharedReads[tuple[tuple[str, ...], str], dict[str, str]] = SharedReads()
        # Where each SKU sits (its product, its categories), for promotions that target them.
        self._placements: Recent[str, Placement] = Recent(reference_cache_seconds)
        if changes is not None:
            changes.listen(ProductChanged.event_type, lambda *_: self._forget_titles())
            changes.listen(ProductChanged.event_type, lambda *_: self._placements.forget())
            changes.listen(CategoryChanged.event_type, lambda *_: self._placements.forget())

    # --- products -------------------------------------------------------------------------

    async def create_product(self, new: NewProduct) -> Product:
        """Create a product with its variants and translations; DuplicateSku (nothing
        written) when one of its SKUs already belongs to a product."""
        draft = domain.valid_new_product(
            new.titles,
            new.descriptions,
            new.default_locale,
            [(v.sku, v.attributes) for v in new.variants],
            new.category,
            new.status,
        )
        skus = [v.sku for v in draft.variants]
        product_id = new_id()
        now = self._clock.now()
        try:
            async with self._db.transaction() as uow:
                conn = uow.connection
                category_id = await _category_id(conn, draft.category)
                taken = await _existing_skus(conn, skus)
                if taken:
                    raise DuplicateSku(taken)
                await uow.execute(
                    products.insert().values(
                        id=product_id,
                        default_locale=draft.default_locale,
                        status=draft.status.value,
                        category_id=category_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await uow.execute(
                    variants.insert(),
                    [
                        {
                            "sku": v.sku,
                            "product_id": product_id,
                            "position": i,
                            "attributes": v.attributes,
                        }
                        for i, v in enumerate(draft.variants)
                    ],
                )
                texts = {
                    locale: (title, draft.descriptions.get(locale))
                    for locale, title in draft.titles.items()
                }
                await _write_translations(conn, product_id, texts)
                if draft.status is ProductStatus.PUBLISHED:
                    told = [uow.record(ProductPublished(product_id=product_id, skus=skus))]
                else:
                    told = [uow.record(ProductChanged(product_id=product_id))]
                product = await _product(conn, product_id)
                await uow.commit()
        except IntegrityError:
            # Another request took one of the SKUs between our check and our insert.
            taken = await self.skus_exist(skus)
            if taken:
                raise DuplicateSku(taken) from None
            raise
        self._committed(told)
        return product

    async def update_product(
        self,
        product_id: str,
        *,
        titles: dict[str, str] | None = None,
        descriptions: dict[str, str] | None = None,
        status: str | None = None,
    ) -> Product:
        """Add or replace titles and descriptions per locale, and publish or withdraw."""
        new_titles = domain.valid_titles(titles or {})
        new_descriptions = domain.valid_descriptions(descriptions or {})
        new_status = None if status is None else domain.valid_status(status)
        async with self._db.transaction() as uow:
            conn = uow.connection
            row = (
                await conn.execute(
                    select(products.c.status, products.c.default_locale)
                    .where(products.c.id == product_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:
                raise ProductNotFound(product_id)
            current = {
                r.locale: (r.title, r.description)
                for r in await conn.execute(
                    select(translations).where(translations.c.product_id == product_id)
                )
            }
            changed: dict[str, tuple[str, str | None]] = {}
            for locale in new_titles.keys() | new_descriptions.keys():
                title, description = current.get(locale, (None, None))
                title = new_titles.get(locale, title)
                if title is None:
                    raise InvalidProduct(
                        f"there is a description in '{locale}' but no title in that locale",
                        locale=locale,
                    )
                changed[locale] = (title, new_descriptions.get(locale, description))
            await _write_translations(conn, product_id, changed, replace=set(current))
            was = ProductStatus(row.status)
            await uow.execute(
                update(products)
                .where(products.c.id == product_id)
                .values(
                    status=(new_status or was).value,
                    updated_at=self._clock.now(),
                )
            )
            product = await _product(conn, product_id)
            told = []
            if new_status is ProductStatus.PUBLISHED and was is not ProductStatus.PUBLISHED:
                told.append(
                    uow.record(
                        ProductPublished(
                            product_id=product_id, skus=[v.sku for v in product.variants]
                        )
                    )
                )
            told.append(uow.record(ProductChanged(product_id=product_id)))
            await uow.commit()
        self._forget_titles()
        self._committed(told)
        return product

    async def product(
        self, product_id: str, locale: str, *, published_only: bool = False
    ) -> LocalizedProduct:
        """One product in `locale`, or its closest fallback, in one statement. The store asks
        with published_only, so drafts stay hidden from shoppers."""
        wanted = domain.normal_locale(locale)
        for row in await self._db.read(reads.BY_IDS, [product_id]):
            found = _localized(row, wanted)
            if not published_only or found.status is ProductStatus.PUBLISHED:
                return found
        raise ProductNotFound(product_id)

    async def products(
        self,
        locale: str,
        q: str | None = None,
        category: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[LocalizedProduct]:
        """Published products in creation order, localized; `q` keeps those with a
        translation in any locale matching every word as a prefix; `category` keeps that
        category and its subcategories. One statement, whatever the page's length; a search
        on PostgreSQL takes two (the page's products are found first, see search.py)."""
        wanted = domain.normal_locale(locale)
        limit, offset = domain.valid_page(limit, offset)
        tokens = domain.search_tokens(q)
        if category is not None:
            domain.valid_slug(category)
        if tokens and self._dialect == "postgresql":
            rows = await self._searched(tokens, category, limit, offset)
        else:
            arguments: list[Any] = [limit, offset]
            if category is not None:
                arguments.append(category)
            if tokens:
                arguments.append(domain.fts5_query(tokens))
            query = reads.listing(in_category=category is not None, matching=bool(tokens))
            rows = await self._db.read(query, *arguments)
        if not rows and category is not None:
            async with self._db.reading() as conn:
                try:
                    await _category_id(conn, category)
                except UnknownCategory:
                    raise CategoryNotFound(category) from None
        return [_localized(row, wanted) for row in rows]

    async def _searched(
        self, tokens: list[str], category: str | None, limit: int, offset: int
    ) -> list[Any]:
        """PostgreSQL: the page's products by walking the listing (or by the index), then
        the page read by id."""
        listed = select(products.c.id, products.c.created_at).where(
            products.c.status == ProductStatus.PUBLISHED.value
        )
        if category is not None:
            tree = (
                select(categories.c.id)
                .where(categories.c.slug == category)
                .cte("category_tree", recursive=True)
            )
            tree = tree.union_all(
                select(categories.c.id).where(categories.c.parent_id == tree.c.id)
            )
            listed = listed.where(products.c.category_id.in_(select(tree.c.id)))
        async with self._db.reading() as conn:
            found = await search.walk_to_matches(conn, listed, tokens, limit, offset)
            if found is None:
                matching = search.matching_products(self._dialect, tokens)
                found = list(
                    await conn.execute(
                        listed.where(products.c.id.in_(matching))
                        .order_by(products.c.created_at, products.c.id)
                        .limit(limit)
                        .offset(offset)
                    )
                )
        ids = [row.id for row in found]
        if not ids:
            return []
        by_id = {row[0]: row for row in await self._db.read(reads.BY_IDS, ids)}
        # A product unpublished between the two reads is left out.
        return [
            by_id[i] for i in ids if i in by_id and by_id[i][2] == ProductStatus.PUBLISHED.value
        ]

    async def skus_exist(self, skus: list[str]) -> set[str]:
        """Which of these SKUs belong to a product (published or not)."""
        async with self._db.reading() as conn:
            return await _existing_skus(conn, skus)

    async def titles_for(self, skus: list[str], locale: str) -> dict[str, str]:
        """Each known SKU's product title in `locale` or its closest fallback (two queries
        for the titles not kept from a recent read)."""
        wanted = domain.normal_locale(locale)
        found: dict[str, str] = {}
        unread: list[str] = []
        for sku in skus:
            title = self._titles.get((sku, wanted))
            if title is None:
                unread.append(sku)
            else:
                found[sku] = title
        if unread:
            read = await self._title_reads.read(
                (tuple(sorted(unread)), wanted), lambda: self._read_titles(unread, wanted)
            )
            for sku, title in read.items():
                self._titles.put((sku, wanted), title)
            found.update(read)
        return found

    async def _read_titles(self, skus: list[str], wanted: str) -> dict[str, str]:
        async with self._db.reading() as conn:
            owners = (
                await conn.execute(
                    select(variants.c.sku, products.c.id, products.c.default_locale)
                    .join(products, products.c.id == variants.c.product_id)
                    .where(variants.c.sku.in_(skus))
                )
            ).all()
            texts: dict[str, dict[str, str]] = defaultdict(dict)
            if owners:
                rows = await conn.execute(
                    select(
                        translations.c.product_id, translations.c.locale, translations.c.title
                    ).where(translations.c.product_id.in_({o.id for o in owners}))
                )
                for row in rows:
                    texts[row.product_id][row.locale] = row.title
        return {
            o.sku: texts[o.id][domain.choose_locale(texts[o.id], wanted, o.default_locale)]
            for o in owners
            if texts[o.id]
        }

    async def placements(self, skus: Sequence[str]) -> dict[str, Placement]:
        """Where the catalog places each known SKU: its product's id, and the slugs of its
        product's category and of every category above it (two reads for those not kept)."""
        found: dict[str, Placement] = {}
        unread: list[str] = []
        for sku in dict.fromkeys(skus):
            kept = self._placements.get(sku)
            if kept is None:
                unread.append(sku)
            else:
                found[sku] = kept
        if not unread:
            return found
        async with self._db.reading() as conn:
            owners = (
                await conn.execute(
                    select(variants.c.sku, products.c.id, products.c.category_id)
                    .join(products, products.c.id == variants.c.product_id)
                    .where(variants.c.sku.in_(unread))
                )
            ).all()
            tree = {
                row.id: (row.parent_id, row.slug)
                for row in await conn.execute(
                    select(categories.c.id, categories.c.parent_id, categories.c.slug)
                )
            }
        for owner in owners:
            placed = (owner.id, frozenset(domain.category_path(tree, owner.category_id)))
            self._placements.put(owner.sku, placed)
            found[owner.sku] = placed
        return found

    def _forget_titles(self) -> None:
        # Reads under way too: they may hold the texts from before the change.
        self._titles.forget()
        self._title_reads.forget()

    async def sku_exists(self, sku: str) -> bool:
        return await self._known_skus.load_once(sku, lambda: self._read_sku_exists(sku))

    async def _read_sku_exists(self, sku: str) -> bool:
        async with self._db.reading() as conn:
            known = bool(await conn.scalar(select(exists().where(variants.c.sku == sku))))
        if known:
            self._known_skus.put(sku, True)
        return known

    # --- categories -----------------------------------------------------------------------

    async def categories(self) -> list[Category]:
        """Every category with its names, by slug (two statements)."""
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(
                    select(categories.c.id, categories.c.slug, categories.c.parent_id).order_by(
                        categories.c.slug
                    )
                )
            ).all()
            named = (
                await conn.execute(
                    select(
                        category_names.c.category_id,
                        category_names.c.locale,
                        category_names.c.name,
                    )
                )
            ).all()
        names: dict[int, dict[str, str]] = defaultdict(dict)
        for row in named:
            names[row.category_id][row.locale] = row.name
        slugs = {row.id: row.slug for row in rows}
        return [
            Category(
                slug=row.slug,
                names=names[row.id],
                parent=None if row.parent_id is None else slugs.get(row.parent_id),
            )
            for row in rows
        ]

    async def set_category(
        self, slug: str, names: dict[str, str], parent: str | None = None
    ) -> Category:
        """Create a category or rename and move it; its names are replaced as given."""
        domain.valid_slug(slug)
        clean_names = domain.valid_category_names(names)
        if parent is not None:
            domain.valid_slug(parent)
            if parent == slug:
                raise CategoryCycle(slug, parent)
        async with self._db.transaction() as uow:
            conn = uow.connection
            parent_id = await _category_id(conn, parent)
            if parent is not None and slug in await _ancestors(conn, parent):
                raise CategoryCycle(slug, parent)
            insert = _dialect_insert(conn, categories).values(
                slug=slug, parent_id=parent_id, created_at=self._clock.now()
            )
            category_id = await conn.scalar(
                insert.on_conflict_do_update(
                    index_elements=[categories.c.slug], set_={"parent_id": parent_id}
                ).returning(categories.c.id)
            )
            await conn.execute(
                category_names.delete().where(category_names.c.category_id == category_id)
            )
            await conn.execute(
                category_names.insert(),
                [
                    {"category_id": category_id, "locale": locale, "name": name}
                    for locale, name in clean_names.items()
                ],
            )
            told = [uow.record(CategoryChanged(slug=slug))]
            await uow.commit()
        self._committed(told)
        return Category(slug=slug, names=clean_names, parent=parent)

    def _committed(self, envelopes: list[Envelope]) -> None:
        # This process's caches hear of the change before the call returns.
        if self._changes is not None:
            self._changes.committed(envelopes)

    @property
    def _dialect(self) -> str:
        return self._db.dialect


# --- helpers ------------------------------------------------------------------------------


def _dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def _existing_skus(conn: AsyncConnection, skus: Sequence[str]) -> set[str]:
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return set()
    rows = await conn.execute(select(variants.c.sku).where(variants.c.sku.in_(wanted)))
    return {row.sku for row in rows}


async def _category_id(conn: AsyncConnection, slug: str | None) -> int | None:
    """The category's id; UnknownCategory when a slug names none."""
    if slug is None:
        return None
    found = await conn.scalar(select(categories.c.id).where(categories.c.slug == slug))
    if found is None:
        raise UnknownCategory(slug)
    return int(found)


async def _ancestors(conn: AsyncConnection, slug: str) -> set[str]:
    """The slugs of a category and every category above it."""
    chain = (
        select(categories.c.id, categories.c.parent_id, categories.c.slug)
        .where(categories.c.slug == slug)
        .cte("ancestors", recursive=True)
    )
    chain = chain.union_all(
        select(categories.c.id, categories.c.parent_id, categories.c.slug).where(
            categories.c.id == chain.c.parent_id
        )
    )
    return set((await conn.execute(select(chain.c.slug))).scalars())


async def _write_translations(
    conn: AsyncConnection,
    product_id: str,
    texts: dict[str, tuple[str, str | None]],
    *,
    replace: set[str] | None = None,
) -> None:
    """Insert the translations (replacing those in `replace`) and keep search in step."""
    if not texts:
        return
    stale = sorted(set(texts) & (replace or set()))
    if stale:
        await conn.execute(
            translations.delete().where(
                translations.c.product_id == product_id, translations.c.locale.in_(stale)
            )
        )
    await conn.execute(
        translations.insert(),
        [
            {
                "product_id": product_id,
                "locale": locale,
                "title": title,
                "description": desc or None,
            }
            for locale, (title, desc) in texts.items()
        ],
    )
    await search.index_translations(conn, product_id, texts)


async def _children(
    conn: AsyncConnection, product_ids: list[str]
) -> tuple[dict[str, list[Variant]], dict[str, dict[str, tuple[str, str | None]]]]:
    """Variants and translations of many products: one IN query each."""
    found_variants: dict[str, list[Variant]] = defaultdict(list)
    found_texts: dict[str, dict[str, tuple[str, str | None]]] = defaultdict(dict)
    if not product_ids:
        return found_variants, found_texts
    for row in await conn.execute(
        select(variants)
        .where(variants.c.product_id.in_(product_ids))
        .order_by(variants.c.product_id, variants.c.position)
    ):
        found_variants[row.product_id].append(Variant(row.sku, dict(row.attributes)))
    for row in await conn.execute(
        select(translations).where(translations.c.product_id.in_(product_ids))
    ):
        found_texts[row.product_id][row.locale] = (row.title, row.description)
    return found_variants, found_texts


async def _product(conn: AsyncConnection, product_id: str) -> Product:
    row = (
        await conn.execute(
            select(*_product_columns).select_from(_with_category).where(products.c.id == product_id)
        )
    ).one_or_none()
    if row is None:
        raise ProductNotFound(product_id)
    found_variants, found_texts = await _children(conn, [product_id])
    texts = found_texts[product_id]
    return Product(
        id=row.id,
        titles={locale: title for locale, (title, _) in sorted(texts.items())},
        descriptions={
            locale: desc for locale, (_, desc) in sorted(texts.items()) if desc is not None
        },
        default_locale=row.default_locale,
        status=ProductStatus(row.status),
        category=row.category,
        variants=tuple(found_variants[product_id]),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _localized(row: Any, wanted: str) -> LocalizedProduct:
    """A product as `reads` gives it (its variants and translations as JSON), in `wanted` or
    its closest fallback."""
    product_id, default_locale, status, category, found_variants, found_texts = row
    texts = {locale: (title, text) for locale, title, text in orjson.loads(found_texts)}
    used = domain.choose_locale(texts, wanted, default_locale)
    title, description = texts[used]
    return LocalizedProduct(
        id=product_id,
        title=title,
        description=description,
        locale=used,
        category=category,
        variants=tuple(
            Variant(sku, attributes)
            for _, sku, attributes in sorted(orjson.loads(found_variants or "[]"), key=_position)
        ),
        status=ProductStatus(status),
    )


def _position(variant: list[Any]) -> int:
    return int(variant[0])
