"""The storefront speaks each market's language: every text its templates and code mark (where
babel.cfg says to look) is in the German and Japanese catalogs, translated, with the same
placeholders, and no catalog keeps a text the shop no longer shows; the shop loads them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import PYTHON_FORMAT, Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from colonnade.storefront.texts import CATALOGS, catalog_path, translations

ROOT = Path(__file__).resolve().parents[2]
STOREFRONT = ROOT / "src" / "colonnade" / "storefront"
LANGUAGES = ("de_DE", "ja_JP")

FIX = """
From the repository root, extract the texts and bring the catalogs up to date:
  .venv/bin/pybabel extract -F babel.cfg -k N_ --sort-output --add-location=file \\
    --header-comment="# The storefront's texts, extracted with babel.cfg (see README.md)." \\
    -o src/colonnade/storefront/locale/messages.pot src/colonnade/storefront
  .venv/bin/pybabel update -i src/colonnade/storefront/locale/messages.pot \\
    -d src/colonnade/storefront/locale --ignore-obsolete --ignore-pot-creation-date
then translate each empty or fuzzy entry in locale/<ll_CC>/LC_MESSAGES/messages.po and remove
its fuzzy flag."""

# A text as catalogs look it up: its English (the singular, for plural forms) and its context.
Key = tuple[str, str | None]


@cache
def sources() -> Catalog:
    """The texts as `pybabel extract -F babel.cfg` finds them; its patterns are relative to the
    storefront's directory."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")  # type: ignore[no-untyped-call]
    found = Catalog()
    for filename, lineno, message, _comments, context in extract_from_dir(
        STOREFRONT, method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        found.add(message, None, [(filename, lineno)], context=context)
    return found


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale, abort_invalid=True)


def forms(text: str | Iterable[str]) -> tuple[str, ...]:
    """A text's forms: one, or the singular and plurals."""
    return (text,) if isinstance(text, str) else tuple(text)


def key(message: Message) -> Key:
    return forms(message.id)[0], message.context


def keys(messages: Iterable[Message]) -> set[Key]:
    return {key(message) for message in messages if message.id}


def shown(found: Key) -> str:
    text, context = found
    return repr(text) if context is None else f"{text!r} (context {context!r})"


def placeholders(texts: tuple[str, ...]) -> set[str]:
    return {found.group(0) for text in texts for found in PYTHON_FORMAT.finditer(text)}


def problem(english: Message, translated: Message | None) -> str | None:
    """What is wrong with a text's translation, if anything."""
    if translated is None:
        return "missing"
    wanted = forms(english.id)
    written = forms(translated.string or "")
    quoted = " | ".join(repr(text) for text in written)
    if not all(written):
        return "not translated"
    if translated.fuzzy:
        return "fuzzy (check the translation, then remove the flag)"
    if placeholders(written) != placeholders(wanted):
        has, needs = sorted(placeholders(written)), sorted(placeholders(wanted))
        return f"placeholders {has} in {quoted}, not {needs}"
    # Newstyle gettext %-formats every text, with or without placeholders: a lone % breaks it.
    names = {found.group(1) for text in wanted for found in PYTHON_FORMAT.finditer(text)}
    try:
        for text in written:
            text % dict.fromkeys(names, 0)
    except (ValueError, TypeError) as broken:
        return f"does not format ({broken!r}): {quoted}"
    return None


def test_the_extraction_finds_the_texts_of_the_templates_and_the_code() -> None:
    """Texts from templates, from forms.py, and a refusal written as joined string literals."""
    assert {
        ("Cart", None),
        ("Order %(number)s", None),
        ("Enter an e-mail address such as name@example.com.", None),
        (
            "A card number was typed into a field. We never take card numbers: pay with a card"
            " through the payment form.",
            None,
        ),
    } <= keys(sources())


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    catalog = read(catalog_path(language), language)
    problems = []
    for english in sources():
        if english.id:
            found = problem(english, catalog.get(*key(english)))
            if found is not None:
                problems.append(f"{shown(key(english))}: {found}")
    assert not problems, (
        f"{catalog_path(language).relative_to(ROOT)}:\n  " + "\n  ".join(problems) + FIX
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_catalog_keeps_a_text_the_shop_no_longer_shows(language: str) -> None:
    catalog = read(catalog_path(language), language)
    gone = sorted(keys(catalog) - keys(sources()), key=str)
    gone += sorted(keys(catalog.obsolete.values()), key=str)
    assert not gone, (
        f"{catalog_path(language).relative_to(ROOT)} holds texts no longer in the sources:\n  "
        + "\n  ".join(shown(text) for text in gone)
        + FIX
    )


def test_the_template_holds_exactly_the_texts_of_the_sources() -> None:
    """messages.pot is what new catalogs start from (pybabel init) and updates merge."""
    template = keys(read(CATALOGS / "messages.pot"))
    wanted = keys(sources())
    stale = [f"missing: {shown(text)}" for text in sorted(wanted - template, key=str)]
    stale += [f"no longer used: {shown(text)}" for text in sorted(template - wanted, key=str)]
    assert not stale, "locale/messages.pot is stale:\n  " + "\n  ".join(stale) + FIX


def test_the_shop_loads_each_language_and_shows_english_without_a_catalog() -> None:
    assert translations("de_DE").gettext("Cart") == "Warenkorb"
    assert translations("ja_JP").gettext("Cart") == "カート"
    assert translations("de_DE").gettext("Incl. tax") == "inkl. MwSt."
    assert translations("ja_JP").gettext("Order %(number)s") == "ご注文番号 %(number)s"
    assert translations("en_US").gettext("Cart") == "Cart"
