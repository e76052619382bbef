"""The storefront's texts in each language: Babel's message catalogs (locale/<ll_CC>/
LC_MESSAGES/messages.po, extracted from the templates with `pybabel extract -F babel.cfg`),
compiled in memory when the shop starts, so no compiled file is kept beside its source.

English is the language the texts are written in; a language without a catalog, or a text
its catalog lacks, shows the English."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

CATALOGS = Path(__file__).parent / "locale"
DOMAIN = "messages"


def catalog_path(babel_locale: str) -> Path:
    return CATALOGS / babel_locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(babel_locale: str) -> NullTranslations:
    path = catalog_path(babel_locale)
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=babel_locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is written; it is translated where shown."""
    return message
