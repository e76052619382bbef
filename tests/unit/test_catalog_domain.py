"""Catalog's pure rules: locale fallback, what makes a valid product, safe search tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.modules.catalog.domain import (
    InvalidCategory,
    InvalidPage,
    InvalidProduct,
    InvalidSku,
    MissingTitle,
    ProductStatus,
    RepeatedSku,
    StockLabel,
    UnknownLocale,
    choose_locale,
    fallback_chain,
    fts5_query,
    normal_locale,
    search_tokens,
    stock_label,
    tsquery,
    valid_new_product,
    valid_page,
    valid_slug,
)

KNOWN_LOCALES = ["de-AT", "de-DE", "de", "en-US", "en", "ja-JP", "zh-Hant-TW", "sr-Latn", "fr-CA"]


# --- locales ------------------------------------------------------------------------------


def test_an_austrian_shopper_falls_back_to_german_then_the_default() -> None:
    assert fallback_chain("de-AT", default="en-US") == ["de-AT", "de", "en-US"]


def test_a_bare_language_falls_back_to_the_default() -> None:
    assert fallback_chain("de", default="en-US") == ["de", "en-US"]


def test_the_default_is_not_repeated_when_it_is_on_the_chain_already() -> None:
    assert fallback_chain("en-US", default="en-US") == ["en-US", "en"]
    assert fallback_chain("en-GB", default="en") == ["en-GB", "en"]


def test_locale_tags_are_spelled_canonically() -> None:
    assert normal_locale("de-at") == "de-AT"
    assert normal_locale("EN-us") == "en-US"
    assert normal_locale("zh-hant-tw") == "zh-Hant-TW"
    assert fallback_chain("de-at", default="en-us") == ["de-AT", "de", "en-US"]
    assert fallback_chain("zh-Hant-TW", default="en") == ["zh-Hant-TW", "zh-Hant", "zh", "en"]


@pytest.mark.parametrize(
    "tag", ["", "xx-YY", "de_AT", "de-AT-", "und", "root", "1234", "de AT", "../etc", "x" * 50]
)
def test_unknown_or_malformed_locales_are_refused(tag: str) -> None:
    with pytest.raises(UnknownLocale) as refused:
        normal_locale(tag)
    assert refused.value.status == 422
    assert refused.value.code == "unknown_locale"


@given(st.sampled_from(KNOWN_LOCALES), st.sampled_from(KNOWN_LOCALES))
def test_a_chain_starts_with_the_wish_ends_with_the_default_and_only_widens(
    wanted: str, default: str
) -> None:
    chain = fallback_chain(wanted, default)
    assert chain[0] == normal_locale(wanted)
    assert chain[-1] == normal_locale(default) or normal_locale(default) in chain
    assert len(chain) == len(set(chain))
    # Every step before the default is a parent of the step before it.
    steps = chain if normal_locale(default) in chain[:-1] else chain[:-1]
    for wider, narrower in zip(steps[1:], steps, strict=False):
        assert narrower.startswith(wider + "-")


@given(st.text(max_size=20))
def test_any_text_is_a_canonical_locale_or_refused_as_unknown(text: str) -> None:
    try:
        normal = normal_locale(text)
    except UnknownLocale:
        return
    assert normal.lower() == text.lower()
    assert normal_locale(normal) == normal


def test_the_translation_follows_the_chain() -> None:
    assert choose_locale({"en-US", "de", "de-AT"}, "de-AT", "en-US") == "de-AT"
    assert choose_locale({"en-US", "de"}, "de-AT", "en-US") == "de"
    assert choose_locale({"en-US", "fr"}, "de-AT", "en-US") == "en-US"


def test_a_language_step_finds_a_regional_translation() -> None:
    assert choose_locale({"en-US", "de-DE", "de-CH"}, "de-AT", "en-US") == "de-CH"
    assert choose_locale({"en-US", "de-DE"}, "de", "en-US") == "de-DE"


def test_without_the_default_any_translation_is_chosen_the_same_way_every_time() -> None:
    assert choose_locale({"ja-JP", "fr-FR"}, "de-AT", "en-US") == "fr-FR"


@given(
    st.sets(st.sampled_from(KNOWN_LOCALES), min_size=1),
    st.sampled_from(KNOWN_LOCALES),
    st.sampled_from(KNOWN_LOCALES),
)
def test_the_chosen_translation_is_always_one_that_exists(
    available: set[str], wanted: str, default: str
) -> None:
    chosen = choose_locale(available, wanted, default)
    assert chosen in available
    if normal_locale(wanted) in available:
        assert chosen == normal_locale(wanted)


# --- new products -------------------------------------------------------------------------


def new(**changes: object) -> dict[str, object]:
    product: dict[str, object] = {
        "titles": {"en-US": "Kenya AA beans", "de-de": "Kenia AA Bohnen"},
        "descriptions": {"en-US": "  Bright and fruity.  "},
        "default_locale": "en-US",
        "variants": [("KENYA-250", {"size": "250g"}), ("KENYA-1000", {"size": "1kg"})],
        "category": "coffee",
        "status": "published",
    }
    product.update(changes)
    return product


def test_a_valid_product_comes_back_canonical_and_trimmed() -> None:
    draft = valid_new_product(**new())  # type: ignore[arg-type]
    assert draft.titles == {"en-US": "Kenya AA beans", "de-DE": "Kenia AA Bohnen"}
    assert draft.descriptions == {"en-US": "Bright and fruity."}
    assert [v.sku for v in draft.variants] == ["KENYA-250", "KENYA-1000"]
    assert draft.status is ProductStatus.PUBLISHED


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"variants": []}, InvalidProduct, "invalid_product"),
        ({"variants": [("A-1", {}), ("A-1", {})]}, RepeatedSku, "repeated_sku"),
        ({"variants": [("has space", {})]}, InvalidSku, "invalid_sku"),
        ({"variants": [("", {})]}, InvalidSku, "invalid_sku"),
        ({"variants": [("X" * 65, {})]}, InvalidSku, "invalid_sku"),
        ({"variants": [("ÄPFEL", {})]}, InvalidSku, "invalid_sku"),
        ({"default_locale": "fr-FR"}, MissingTitle, "missing_title"),
        ({"titles": {"en-US": "   "}}, InvalidProduct, "invalid_product"),
        ({"titles": {"en-US": "A", "en-us": "B"}}, InvalidProduct, "invalid_product"),
        ({"titles": {"en-US": "A", "xx-YY": "B"}}, UnknownLocale, "unknown_locale"),
        ({"default_locale": "klingon"}, UnknownLocale, "unknown_locale"),
        ({"descriptions": {"fr": "Sans titre"}}, InvalidProduct, "invalid_product"),
        ({"category": "Not A Slug"}, InvalidCategory, "invalid_category"),
        ({"status": "archived"}, InvalidProduct, "invalid_product"),
        ({"variants": [("A-1", {"weight": 1.5})]}, InvalidProduct, "invalid_product"),
    ],
)
def test_an_invalid_product_is_refused_with_a_precise_code(
    changes: dict[str, object], error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as refused:
        valid_new_product(**new(**changes))  # type: ignore[arg-type]
    assert refused.value.code == code  # type: ignore[attr-defined]
    assert refused.value.status == 422  # type: ignore[attr-defined]


@given(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True))
def test_every_sku_of_the_allowed_shape_is_accepted(sku: str) -> None:
    draft = valid_new_product(**new(variants=[(sku, {})]))  # type: ignore[arg-type]
    assert draft.variants[0].sku == sku


def test_category_slugs_are_lowercase_words() -> None:
    assert valid_slug("pour-over-2") == "pour-over-2"
    for bad in ["", "Coffee", "-coffee", "coffee-", "two--dashes", "a b", "x" * 65]:
        with pytest.raises(InvalidCategory):
            valid_slug(bad)


def test_a_page_is_one_to_a_hundred_products() -> None:
    assert valid_page(100, 0) == (100, 0)
    for limit, offset in [(0, 0), (101, 0), (10, -1), (True, 0), ("5", 0)]:
        with pytest.raises(InvalidPage):
            valid_page(limit, offset)


# --- search -------------------------------------------------------------------------------


def test_search_text_becomes_lowercase_word_tokens() -> None:
    assert search_tokens("Flash  GRINDER") == ["flash", "grinder"]
    assert search_tokens("Mühle-Kaffee") == ["mühle", "kaffee"]
    assert search_tokens("flash flash") == ["flash"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ('" OR 1=1 --', ["or", "1"]),
        ("*", []),
        ("NEAR(", ["near"]),
        ("'", []),
        ("a:b & c|d !e", ["a", "b", "c", "d", "e"]),
        ("", []),
        (None, []),
        ("snake_case", ["snake", "case"]),
    ],
)
def test_search_syntax_is_only_punctuation_between_words(
    text: str | None, tokens: list[str]
) -> None:
    assert search_tokens(text) == tokens


@given(st.text())
def test_every_query_becomes_tokens_of_letters_and_digits_only(text: str) -> None:
    tokens = search_tokens(text)
    assert len(tokens) <= 16
    for token in tokens:
        assert token
        assert all(ch.isalnum() for ch in token)
    query = fts5_query(tokens)
    assert query == " ".join(f'"{t}"*' for t in tokens)
    assert tsquery(tokens) == " & ".join(f"{t}:*" for t in tokens)


def test_shoppers_see_whether_a_variant_is_in_stock_running_low_or_sold_out() -> None:
    assert [stock_label(n) for n in (-1, 0, 1, 5, 6, 500)] == [
        StockLabel.SOLD_OUT,
        StockLabel.SOLD_OUT,
        StockLabel.LOW,
        StockLabel.LOW,
        StockLabel.IN_STOCK,
        StockLabel.IN_STOCK,
    ]
