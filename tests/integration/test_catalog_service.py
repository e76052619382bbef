"""The catalog against real SQLite and PostgreSQL: products, locale fallback, search."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.schema import outbox
from colonnade.kernel.uow import listen_to_driver_statements
from colonnade.modules.catalog import search
from colonnade.modules.catalog.domain import (
    CategoryCycle,
    CategoryNotFound,
    InvalidPage,
    RepeatedSku,
    UnknownCategory,
    UnknownLocale,
)
from colonnade.modules.catalog.service import (
    CatalogService,
    DuplicateSku,
    NewProduct,
    NewVariant,
    ProductNotFound,
    ProductStatus,
)
from tests.conftest import count_rows

CATALOG_TABLES = ["catalog_products", "catalog_variants", "catalog_translations"]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 28, 8, 0, tzinfo=UTC))


@pytest.fixture
def catalog(db: Database, clock: SettableClock) -> CatalogService:
    return CatalogService(db, clock=clock)


def product(
    *skus: str,
    titles: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
    default_locale: str = "en-US",
    category: str | None = None,
    status: str = "published",
) -> NewProduct:
    return NewProduct(
        titles=titles or {"en-US": f"Product {skus[0]}"},
        descriptions=descriptions or {},
        default_locale=default_locale,
        variants=[NewVariant(sku=sku, attributes={"size": "M"}) for sku in skus],
        category=category,
        status=status,
    )


async def add(catalog: CatalogService, clock: SettableClock, new: NewProduct) -> str:
    # Products list in creation order; a tick apart keeps that order unambiguous.
    clock.advance(timedelta(seconds=1))
    return (await catalog.create_product(new)).id


async def rows(db: Database) -> dict[str, int]:
    return {t: await count_rows(db, t) for t in [*CATALOG_TABLES, "kernel_outbox"]}


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.reading() as conn:
        result = await conn.execute(
            select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.id)
        )
        return [(r.event_type, r.payload) for r in result]


@contextmanager
def counting_queries(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    stop = listen_to_driver_statements(db.engine, lambda sql: count(None, None, sql))
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        stop()


# --- creating products --------------------------------------------------------------------


async def test_a_new_product_is_stored_with_its_variants_and_translations(
    db: Database, catalog: CatalogService
) -> None:
    await catalog.set_category("coffee", {"en-US": "Coffee"})
    created = await catalog.create_product(
        NewProduct(
            titles={"en-US": "Kenya AA beans", "de-de": "Kenia AA Bohnen"},
            descriptions={"en-US": "Bright and fruity."},
            default_locale="en-US",
            variants=[
                NewVariant(sku="KENYA-250", attributes={"size": "250g"}),
                NewVariant(sku="KENYA-1000", attributes={"size": "1kg", "whole": True}),
            ],
            category="coffee",
        )
    )
    assert created.titles == {"de-DE": "Kenia AA Bohnen", "en-US": "Kenya AA beans"}
    assert created.descriptions == {"en-US": "Bright and fruity."}
    assert created.status is ProductStatus.PUBLISHED
    assert created.category == "coffee"
    assert [(v.sku, v.attributes) for v in created.variants] == [
        ("KENYA-250", {"size": "250g"}),
        ("KENYA-1000", {"size": "1kg", "whole": True}),
    ]
    shown = await catalog.product(created.id, "en-US")
    assert (shown.title, shown.description, shown.locale) == (
        "Kenya AA beans",
        "Bright and fruity.",
        "en-US",
    )
    assert await catalog.skus_exist(["KENYA-250", "KENYA-1000", "NOPE"]) == {
        "KENYA-250",
        "KENYA-1000",
    }
    assert await catalog.sku_exists("KENYA-250")
    assert not await catalog.sku_exists("NOPE")
    assert await events(db) == [
        ("catalog.CategoryChanged", {"slug": "coffee"}),
        (
            "catalog.ProductPublished",
            {"product_id": created.id, "skus": ["KENYA-250", "KENYA-1000"]},
        ),
    ]


async def test_a_sku_already_in_the_shop_is_refused_and_nothing_is_written(
    db: Database, catalog: CatalogService, clock: SettableClock
) -> None:
    await add(catalog, clock, product("GRINDER-1"))
    before = await rows(db)
    with pytest.raises(DuplicateSku) as refused:
        await catalog.create_product(product("NEW-1", "GRINDER-1"))
    assert refused.value.status == 409
    assert refused.value.code == "duplicate_sku"
    assert "GRINDER-1" in refused.value.detail
    assert refused.value.extensions["sku"] == "GRINDER-1"
    assert await rows(db) == before
    assert not await catalog.sku_exists("NEW-1")


async def test_a_sku_twice_in_one_product_is_refused_and_nothing_is_written(
    db: Database, catalog: CatalogService
) -> None:
    with pytest.raises(RepeatedSku):
        await catalog.create_product(product("MUG-1", "MUG-1"))
    assert await rows(db) == {t: 0 for t in [*CATALOG_TABLES, "kernel_outbox"]}


async def test_an_unknown_category_is_refused_and_nothing_is_written(
    db: Database, catalog: CatalogService
) -> None:
    with pytest.raises(UnknownCategory):
        await catalog.create_product(product("MUG-1", category="mugs"))
    assert await rows(db) == {t: 0 for t in [*CATALOG_TABLES, "kernel_outbox"]}


async def test_drafts_stay_out_of_the_store_until_published(
    db: Database, catalog: CatalogService, clock: SettableClock
) -> None:
    draft = await add(catalog, clock, product("SECRET-1", status="draft"))
    assert await catalog.products("en-US") == []
    with pytest.raises(ProductNotFound):
        await catalog.product(draft, "en-US", published_only=True)
    assert (await catalog.product(draft, "en-US")).status is ProductStatus.DRAFT

    published = await catalog.update_product(draft, status="published")
    assert published.status is ProductStatus.PUBLISHED
    assert [p.id for p in await catalog.products("en-US")] == [draft]
    assert [kind for kind, _ in await events(db)] == [
        "catalog.ProductChanged",
        "catalog.ProductPublished",
        "catalog.ProductChanged",
    ]


async def test_an_unknown_product_is_not_found(catalog: CatalogService) -> None:
    with pytest.raises(ProductNotFound) as missing:
        await catalog.product("no-such-product", "en-US")
    assert missing.value.status == 404
    assert missing.value.code == "product_not_found"


# --- locales ------------------------------------------------------------------------------


async def test_an_austrian_shopper_sees_austrian_then_german_then_the_default(
    catalog: CatalogService, clock: SettableClock
) -> None:
    austrian = await add(
        catalog,
        clock,
        product("A-1", titles={"en-US": "Potato", "de": "Kartoffel", "de-AT": "Erdapfel"}),
    )
    german = await add(catalog, clock, product("G-1", titles={"en-US": "Bread", "de": "Brot"}))
    german_de = await add(
        catalog, clock, product("G-2", titles={"en-US": "Grinder", "de-DE": "Mühle"})
    )
    english = await add(catalog, clock, product("E-1", titles={"en-US": "Kettle"}))
    japanese = await add(
        catalog,
        clock,
        product("J-1", titles={"ja-JP": "急須", "fr-FR": "Théière"}, default_locale="ja-JP"),
    )

    shown = {p.id: (p.title, p.locale) for p in await catalog.products("de-at")}
    assert shown == {
        austrian: ("Erdapfel", "de-AT"),
        german: ("Brot", "de"),
        german_de: ("Mühle", "de-DE"),
        english: ("Kettle", "en-US"),
        # No German and no en-US: the product's own default locale.
        japanese: ("急須", "ja-JP"),
    }
    assert (await catalog.product(german, "de-CH")).title == "Brot"


async def test_an_unknown_locale_is_refused(catalog: CatalogService) -> None:
    with pytest.raises(UnknownLocale):
        await catalog.products("xx-YY")
    with pytest.raises(UnknownLocale):
        await catalog.product("whatever", "not a locale")


# --- search -------------------------------------------------------------------------------


async def test_search_matches_word_prefixes_and_needs_every_word(
    catalog: CatalogService, clock: SettableClock
) -> None:
    grinder = await add(
        catalog,
        clock,
        product(
            "GR-1",
            titles={"en-US": "Flash sale grinder"},
            descriptions={"en-US": "Burrs of hardened steel"},
        ),
    )
    kettle = await add(catalog, clock, product("KE-1", titles={"en-US": "Gooseneck kettle"}))

    async def found(q: str) -> list[str]:
        return [p.id for p in await catalog.products("en-US", q=q)]

    assert await found("grind") == [grinder]
    assert await found("FLASH gri") == [grinder]
    assert await found("hardened") == [grinder]
    assert await found("flash kettle") == []
    assert await found("goose") == [kettle]
    assert await found("   ") == [grinder, kettle]


async def test_a_code_is_found_however_the_title_writes_it(
    catalog: CatalogService, clock: SettableClock
) -> None:
    """PostgreSQL reads "86E02F639B" alone as a number and a word, and inside a hyphenated
    word as one word: a shopper's search for the code finds both titles."""
    hyphenated = await add(
        catalog, clock, product("CODE-1", titles={"en-US": "Grinder TEST-86E02F639B"})
    )
    alone = await add(catalog, clock, product("CODE-2", titles={"en-US": "Kettle 86E02F639B"}))

    async def found(q: str) -> set[str]:
        return {p.id for p in await catalog.products("en-US", q=q)}

    assert await found("TEST-86E02F639B") == {hyphenated}
    assert await found("86E02F639B") == {hyphenated, alone}
    assert await found("86e02") == {hyphenated, alone}


async def test_a_search_pages_through_matches_in_listing_order_near_and_far(
    catalog: CatalogService, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short walk, so that a page of few, late matches is found by the index instead.
    monkeypatch.setattr(search, "WALK", 0)
    lamps = []
    for n in range(30):
        title = f"Reading lamp {n}" if n % 2 == 0 or n == 29 else f"Espresso cup {n}"
        shown = await add(catalog, clock, product(f"SKU-{n}", titles={"en-US": title}))
        if "lamp" in title:
            lamps.append(shown)

    async def found(q: str, limit: int, offset: int = 0) -> list[str]:
        return [p.id for p in await catalog.products("en-US", q=q, limit=limit, offset=offset)]

    assert await found("reading lamp", 3) == lamps[:3]
    assert await found("lamp", 4, offset=2) == lamps[2:6]
    assert await found("lamp", 20) == lamps
    assert await found("lamp 29", 5) == [lamps[-1]]


async def test_a_word_in_another_locale_finds_the_product_shown_in_the_shoppers_locale(
    catalog: CatalogService, clock: SettableClock
) -> None:
    beans = await add(
        catalog,
        clock,
        product("K-1", titles={"en-US": "Kenya AA beans", "de-DE": "Kenia AA Bohnen"}),
    )
    found = await catalog.products("en-US", q="bohnen")
    assert [(p.id, p.title) for p in found] == [(beans, "Kenya AA beans")]
    assert [p.title for p in await catalog.products("de-AT", q="bohn")] == ["Kenia AA Bohnen"]


@pytest.mark.parametrize(
    "hostile",
    [
        '" OR 1=1 --',
        "*",
        "NEAR(",
        "'",
        '"',
        "-",
        "OR",
        "AND NOT",
        "beans OR kettle",
        "title:beans",
        "^beans",
        "beans*",
        "a & b | !c",
        "'; DROP TABLE catalog_products; --",
        "\x00",
        "x²",
        "١٢٣",
        "ǅ",
        "😀",
        "\\",
    ],
)
async def test_hostile_search_text_returns_normally(
    catalog: CatalogService, clock: SettableClock, hostile: str
) -> None:
    beans = await add(catalog, clock, product("K-1", titles={"en-US": "Kenya AA beans"}))
    found = await catalog.products("en-US", q=hostile)
    assert all(p.id == beans for p in found)
    assert await catalog.sku_exists("K-1")


async def test_changed_titles_are_found_by_their_new_words_only(
    catalog: CatalogService, clock: SettableClock
) -> None:
    mug = await add(catalog, clock, product("MUG-1", titles={"en-US": "Enamel mug"}))
    changed = await catalog.update_product(
        mug, titles={"en-US": "Stoneware cup", "fr": "Tasse"}, descriptions={"fr": "En grès"}
    )
    assert changed.titles == {"en-US": "Stoneware cup", "fr": "Tasse"}
    assert [p.id for p in await catalog.products("en-US", q="stoneware")] == [mug]
    assert [p.id for p in await catalog.products("en-US", q="grès")] == [mug]
    assert await catalog.products("en-US", q="enamel") == []


# --- listings -----------------------------------------------------------------------------


async def test_listings_page_in_creation_order(
    catalog: CatalogService, clock: SettableClock
) -> None:
    ids = [await add(catalog, clock, product(f"P-{i}")) for i in range(5)]
    assert [p.id for p in await catalog.products("en-US", limit=2)] == ids[:2]
    assert [p.id for p in await catalog.products("en-US", limit=2, offset=2)] == ids[2:4]
    assert [p.id for p in await catalog.products("en-US", limit=100, offset=4)] == ids[4:]
    with pytest.raises(InvalidPage):
        await catalog.products("en-US", limit=101)


async def test_a_listing_costs_one_statement_however_many_products(
    db: Database, catalog: CatalogService, clock: SettableClock
) -> None:
    for i in range(12):
        await add(catalog, clock, product(f"P-{i}", f"P-{i}-XL", titles={"en-US": f"Shirt {i}"}))
    with counting_queries(db) as statements:
        listed = await catalog.products("de-AT", limit=100)
    with counting_queries(db) as searching:
        found = await catalog.products("de-AT", q="shirt", limit=100)
    assert len(listed) == len(found) == 12
    assert all(len(p.variants) == 2 for p in found)
    assert len(statements) == 1
    # PostgreSQL finds a search's page first (walking the listing), then reads it by id.
    assert len(searching) == (2 if db.dialect == "postgresql" else 1)


async def test_a_category_lists_its_products_and_its_subcategories(
    catalog: CatalogService, clock: SettableClock
) -> None:
    await catalog.set_category("drinks", {"en-US": "Drinks"})
    await catalog.set_category("coffee", {"en-US": "Coffee", "de-DE": "Kaffee"}, "drinks")
    await catalog.set_category("kitchen", {"en-US": "Kitchen"})
    beans = await add(catalog, clock, product("B-1", category="coffee"))
    juice = await add(catalog, clock, product("J-1", category="drinks"))
    await add(catalog, clock, product("K-1", category="kitchen"))
    await add(catalog, clock, product("X-1"))

    assert [p.id for p in await catalog.products("en-US", category="drinks")] == [beans, juice]
    assert [p.id for p in await catalog.products("en-US", category="coffee")] == [beans]
    assert (await catalog.product(beans, "en-US")).category == "coffee"
    with pytest.raises(CategoryNotFound):
        await catalog.products("en-US", category="garden")


async def test_a_category_cannot_sit_under_itself_or_its_subcategories(
    catalog: CatalogService,
) -> None:
    await catalog.set_category("drinks", {"en-US": "Drinks"})
    await catalog.set_category("coffee", {"en-US": "Coffee"}, "drinks")
    await catalog.set_category("espresso", {"en-US": "Espresso"}, "coffee")
    with pytest.raises(CategoryCycle):
        await catalog.set_category("drinks", {"en-US": "Drinks"}, "espresso")
    with pytest.raises(CategoryCycle):
        await catalog.set_category("coffee", {"en-US": "Coffee"}, "coffee")
    with pytest.raises(UnknownCategory):
        await catalog.set_category("tea", {"en-US": "Tea"}, "hot-drinks")
    moved = await catalog.set_category("coffee", {"de-DE": "Kaffee"}, None)
    assert (moved.slug, moved.names, moved.parent) == ("coffee", {"de-DE": "Kaffee"}, None)
