"""Catalog rules: locales and their fallback, what a valid product is, and how a shopper's
search text becomes safe search tokens. Pure functions and types; the service does the I/O."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from babel import Locale, UnknownLocaleError

from colonnade.kernel.errors import Conflict, InvalidInput, NotFound
from colonnade.kernel.shapes import LOCALE_TAG

MAX_TITLE_LENGTH = 300
MAX_DESCRIPTION_LENGTH = 10_000
MAX_VARIANTS = 100
MAX_CATEGORY_NAME_LENGTH = 200
MAX_ATTRIBUTES = 20
MAX_PAGE = 100
MAX_OFFSET = 100_000
# A longer query only slows the search down; nobody types sixteen words into a shop's search.
MAX_SEARCH_TOKENS = 16
MAX_SEARCH_TOKEN_LENGTH = 64
MAX_SLUG_LENGTH = 64
MAX_ATTRIBUTE_NAME_LENGTH = 64
MAX_ATTRIBUTE_TEXT_LENGTH = 200

SKU_SHAPE = r"[A-Za-z0-9._-]{1,64}"
SLUG_SHAPE = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_SKU = re.compile(SKU_SHAPE)
_SLUG = re.compile(SLUG_SHAPE)
_LOCALE_SHAPE = re.compile(LOCALE_TAG)
# Letters and digits of any script, nothing else: no quote, star, dash or colon survives,
# so no token can ever be read as search syntax by FTS5 or PostgreSQL.
_SEARCH_TOKEN = re.compile(r"[^\W_]+")


class ProductStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class StockLabel(StrEnum):
    """What a shopper is told of a variant's stock: never the count itself."""

    IN_STOCK = "in_stock"
    LOW = "low"
    SOLD_OUT = "sold_out"


# At or below this many units a variant shows as running low.
LOW_STOCK_UNITS = 5


# --- errors -------------------------------------------------------------------------------


class UnknownLocale(InvalidInput):
    code = "unknown_locale"

    def __init__(self, locale: object) -> None:
        super().__init__(
            f"{locale!r} is not a known locale; use a tag such as 'en-US', 'de-AT' or 'ja'",
            locale=str(locale),
        )


class InvalidSku(InvalidInput):
    code = "invalid_sku"

    def __init__(self, sku: object) -> None:
        super().__init__(
            f"a SKU is 1 to 64 letters, digits, '-', '_' or '.'; got {sku!r}", sku=str(sku)
        )


class RepeatedSku(InvalidInput):
    code = "repeated_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"the SKU '{sku}' is given for more than one variant", sku=sku)


class MissingTitle(InvalidInput):
    code = "missing_title"

    def __init__(self, locale: str) -> None:
        super().__init__(
            f"the product needs a title in its default locale '{locale}'", locale=locale
        )


class InvalidProduct(InvalidInput):
    code = "invalid_product"


class InvalidCategory(InvalidInput):
    code = "invalid_category"


class InvalidPage(InvalidInput):
    code = "invalid_page"


class UnknownCategory(InvalidInput):
    """A product or category refers to a category that does not exist."""

    code = "unknown_category"

    def __init__(self, slug: str) -> None:
        super().__init__(
            f"no category has the slug '{slug}' (create it with PUT /admin/categories/{slug})",
            category=slug,
        )


class CategoryNotFound(NotFound):
    code = "category_not_found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"no category has the slug '{slug}'", category=slug)


class ProductNotFound(NotFound):
    code = "product_not_found"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"no product has the id '{product_id}'", product_id=product_id)


class DuplicateSku(Conflict):
    code = "duplicate_sku"

    def __init__(self, skus: Iterable[str]) -> None:
        taken = sorted(skus)
        super().__init__(
            f"the SKU '{taken[0]}' already belongs to a product in the shop"
            if len(taken) == 1
            else f"the SKUs {', '.join(repr(s) for s in taken)} already belong to products",
            sku=taken[0],
            skus=taken,
        )


class CategoryCycle(InvalidInput):
    code = "category_cycle"

    def __init__(self, slug: str, parent: str) -> None:
        super().__init__(
            f"category '{slug}' cannot sit under '{parent}': '{parent}' is '{slug}' "
            "itself or one of its subcategories",
            category=slug,
            parent=parent,
        )


# --- locales ------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parsed(tag: str) -> str | None:
    try:
        parsed = Locale.parse(tag, sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    parts = [parsed.language, parsed.script, parsed.territory, parsed.variant]
    normal = "-".join(p for p in parts if p)
    # Babel quietly maps some tags to others ('und' becomes 'en-US'); a shop must not.
    if normal.lower() != tag.lower() or parsed.language == "root":
        return None
    return normal


def normal_locale(tag: object) -> str:
    """The canonical spelling of a locale tag ('de-at' -> 'de-AT'); UnknownLocale otherwise."""
    if not isinstance(tag, str) or not _LOCALE_SHAPE.fullmatch(tag):
        raise UnknownLocale(tag)
    normal = _parsed(tag)
    if normal is None:
        raise UnknownLocale(tag)
    return normal


def fallback_chain(locale: str, default: str) -> list[str]:
    """Where to look for a text, best first: the locale, its ever shorter parents, then the
    shop's default. fallback_chain("de-AT", default="en-US") == ["de-AT", "de", "en-US"]."""
    wanted = normal_locale(locale)
    chain: list[str] = []
    parts = wanted.split("-")
    for end in range(len(parts), 0, -1):
        chain.append("-".join(parts[:end]))
    last = normal_locale(default)
    if last not in chain:
        chain.append(last)
    return chain


def choose_locale(available: Collection[str], wanted: str, default: str) -> str:
    """The available translation to show for `wanted`, following its fallback chain.

    A step of the chain also matches its regional translations ("de" finds "de-DE"), the
    alphabetically first when there are several. When nothing on the chain is available the
    default locale's translation is shown, else (deterministically) the first one by name.
    """
    if not available:
        raise ValueError("a product always has at least one translation")
    for step in fallback_chain(wanted, default):
        if step in available:
            return step
        regional = sorted(a for a in available if a.startswith(step + "-"))
        if regional:
            return regional[0]
    return min(available)


# --- products -----------------------------------------------------------------------------

AttributeValue = str | int | bool


@dataclass(frozen=True)
class VariantDraft:
    sku: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductDraft:
    """A new product after validation: locales canonical, texts trimmed."""

    titles: dict[str, str]
    descriptions: dict[str, str]
    default_locale: str
    variants: tuple[VariantDraft, ...]
    category: str | None
    status: ProductStatus


def valid_sku(sku: object) -> str:
    if not isinstance(sku, str) or not _SKU.fullmatch(sku):
        raise InvalidSku(sku)
    return sku


def valid_slug(slug: object) -> str:
    if not isinstance(slug, str) or len(slug) > MAX_SLUG_LENGTH or not _SLUG.fullmatch(slug):
        raise InvalidCategory(
            "a category slug is 1 to 64 lowercase letters and digits in words joined by '-'; "
            f"got {slug!r}",
            category=str(slug),
        )
    return slug


def valid_status(status: object) -> ProductStatus:
    for known in ProductStatus:
        if isinstance(status, str) and status == known.value:
            return known
    raise InvalidProduct(
        f"a product's status is 'draft' or 'published', not {status!r}", field="status"
    )


def _texts(
    texts: Mapping[str, str], what: str, longest: int, *, blank_ok: bool = False
) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag, text in texts.items():
        locale = normal_locale(tag)
        if locale in found:
            raise InvalidProduct(
                f"the {what} for locale '{locale}' is given twice (as '{tag}' and another "
                "spelling)",
                locale=locale,
            )
        if not isinstance(text, str) or (not blank_ok and not text.strip()):
            raise InvalidProduct(
                f"the {what} for locale '{locale}' must be text, not blank", locale=locale
            )
        if len(text) > longest:
            raise InvalidProduct(
                f"the {what} for locale '{locale}' is longer than {longest} characters",
                locale=locale,
            )
        found[locale] = text.strip()
    return found


def valid_titles(titles: Mapping[str, str]) -> dict[str, str]:
    return _texts(titles, "title", MAX_TITLE_LENGTH)


def valid_descriptions(descriptions: Mapping[str, str]) -> dict[str, str]:
    return _texts(descriptions, "description", MAX_DESCRIPTION_LENGTH, blank_ok=True)


def valid_attributes(sku: str, attributes: Mapping[str, object]) -> dict[str, AttributeValue]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidProduct(f"variant '{sku}' has more than {MAX_ATTRIBUTES} attributes", sku=sku)
    found: dict[str, AttributeValue] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_ATTRIBUTE_NAME_LENGTH:
            raise InvalidProduct(
                f"variant '{sku}' has an attribute name that is not 1 to 64 characters: {name!r}",
                sku=sku,
            )
        if not isinstance(value, str | int | bool) or (
            isinstance(value, str) and len(value) > MAX_ATTRIBUTE_TEXT_LENGTH
        ):
            raise InvalidProduct(
                f"attribute '{name}' of variant '{sku}' must be text (up to 200 characters), "
                f"a whole number or true/false; got {value!r}",
                sku=sku,
            )
        found[name] = value
    return found


def valid_new_product(
    titles: Mapping[str, str],
    descriptions: Mapping[str, str],
    default_locale: str,
    variants: Iterable[tuple[str, Mapping[str, object]]],
    category: str | None,
    status: object,
) -> ProductDraft:
    """The product as it will be stored, or the first thing wrong with it."""
    default = normal_locale(default_locale)
    clean_titles = valid_titles(titles)
    if default not in clean_titles:
        raise MissingTitle(default)
    clean_descriptions = valid_descriptions(descriptions)
    untitled = sorted(set(clean_descriptions) - set(clean_titles))
    if untitled:
        raise InvalidProduct(
            f"there is a description in '{untitled[0]}' but no title in that locale",
            locale=untitled[0],
        )
    drafts: list[VariantDraft] = []
    seen: set[str] = set()
    for sku, attributes in variants:
        valid_sku(sku)
        if sku in seen:
            raise RepeatedSku(sku)
        seen.add(sku)
        drafts.append(VariantDraft(sku, valid_attributes(sku, attributes)))
    if not drafts:
        raise InvalidProduct("a product needs at least one variant (a SKU to sell)")
    if len(drafts) > MAX_VARIANTS:
        raise InvalidProduct(f"a product has at most {MAX_VARIANTS} variants")
    return ProductDraft(
        titles=clean_titles,
        descriptions=clean_descriptions,
        default_locale=default,
        variants=tuple(drafts),
        category=None if category is None else valid_slug(category),
        status=valid_status(status),
    )


def valid_category_names(names: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag, name in names.items():
        locale = normal_locale(tag)
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CATEGORY_NAME_LENGTH:
            raise InvalidCategory(
                f"the category name for '{locale}' must be 1 to {MAX_CATEGORY_NAME_LENGTH} "
                "characters, not blank",
                locale=locale,
            )
        found[locale] = name.strip()
    if not found:
        raise InvalidCategory("a category needs a name in at least one locale")
    return found


def _bounded(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidPage(
            f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name
        )
    return value


def valid_page(limit: object, offset: object) -> tuple[int, int]:
    return _bounded("limit", limit, 1, MAX_PAGE), _bounded("offset", offset, 0, MAX_OFFSET)


# --- stock --------------------------------------------------------------------------------


def stock_label(available: int) -> StockLabel:
    if available <= 0:
        return StockLabel.SOLD_OUT
    if available <= LOW_STOCK_UNITS:
        return StockLabel.LOW
    return StockLabel.IN_STOCK


# --- search -------------------------------------------------------------------------------


def search_tokens(text: str | None) -> list[str]:
    """The shopper's words as plain lowercase tokens of letters and digits, each to be matched
    as a prefix. Everything else (quotes, stars, operators' punctuation) only separates words,
    so any text at all makes a valid search; no tokens left means no search filter."""
    if not text:
        return []
    tokens: list[str] = []
    for token in _SEARCH_TOKEN.findall(text.casefold()):
        token = token[:MAX_SEARCH_TOKEN_LENGTH]
        if token not in tokens:
            tokens.append(token)
    return tokens[:MAX_SEARCH_TOKENS]


def fts5_query(tokens: Iterable[str]) -> str:
    """SQLite FTS5: every token as a quoted prefix, all required."""
    return " ".join(f'"{token}"*' for token in tokens)


def tsquery(tokens: Iterable[str]) -> str:
    """PostgreSQL to_tsquery('simple', ...): every token as a prefix, all required."""
    return " & ".join(f"{token}:*" for token in tokens)


def tsquery_lexemes(tokens: Iterable[str]) -> str:
    """PostgreSQL tsquery text of every token as a prefix, as it is: not parsed again (tokens
    are letters and digits only, so quoting them is safe)."""
    return " & ".join(f"'{token}':*" for token in tokens)


def search_body(title: str, description: str | None) -> str:
    """The text a translation is found by."""
    return f"{title} {description or ''}".strip()


def category_path(tree: Mapping[int, tuple[int | None, str]], category: int | None) -> list[str]:
    """The slugs of a category and of every category above it, given each category's
    (parent, slug) by id; empty for none. A cycle (which the catalog refuses to make) ends
    the walk rather than looping."""
    path: list[str] = []
    seen: set[int] = set()
    while category is not None and category in tree and category not in seen:
        seen.add(category)
        parent, slug = tree[category]
        path.append(slug)
        category = parent
    return path
