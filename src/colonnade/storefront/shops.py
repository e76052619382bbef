"""Which market and language a storefront prefix stands for, and how each shows numbers,
money and dates (from CLDR, through Babel). Pure: no framework, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

from colonnade.kernel.money import Money

# A prefix is a language and a market: two letters, a dash, two letters.
PREFIX = re.compile(r"^[a-z]{2}-[a-z]{2}$")


@dataclass(frozen=True)
class Storefront:
    """One market's pages in its language."""

    prefix: str
    market: str
    locale: str
    currency: str
    market_name: str
    tax_inclusive: bool

    @property
    def babel(self) -> str:
        """The locale as Babel and gettext name it (de_DE)."""
        return self.locale.replace("-", "_")

    @property
    def language(self) -> str:
        return self.locale.split("-")[0]

    @property
    def language_name(self) -> str:
        return Locale.parse(self.babel).get_display_name(self.babel) or self.locale

    @property
    def countries(self) -> tuple[tuple[str, str], ...]:
        """Every country's code and name in this language, by name."""
        return _countries(self.babel)

    def money(self, money: Money | dict[str, object] | None) -> str:
        if money is None:
            return ""
        if isinstance(money, dict):
            money = Money(int(str(money["amount"])), str(money["currency"]))
        return format_currency(money.to_decimal(), money.currency, locale=self.babel)

    def number(self, value: int | Decimal) -> str:
        return format_decimal(value, locale=self.babel)

    def date(self, moment: datetime) -> str:
        return format_date(moment, format="long", locale=self.babel)

    def moment(self, moment: datetime) -> str:
        return format_datetime(moment, format="medium", locale=self.babel)


# CLDR's territories that are no country one ships to: groupings and placeholders.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"})


@cache
def _countries(babel_locale: str) -> tuple[tuple[str, str], ...]:
    named = Locale.parse(babel_locale).territories
    return tuple(
        sorted(
            (
                (code, name)
                for code, name in named.items()
                if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
            ),
            key=lambda country: country[1],
        )
    )


def prefix_of(locale: str, market: str) -> str:
    """`de-DE` in market DE: `de-de`."""
    return f"{locale.split('-')[0]}-{market}".lower()


def storefronts(
    markets: list[tuple[str, str, str, str, bool]], home_currency: str
) -> list[Storefront]:
    """A storefront per market (code, name, currency, locale, tax inclusive), in its
    language: first the markets selling in the shop's own currency (the default pages),
    then the rest in the order given."""
    shops = [
        Storefront(
            prefix=prefix_of(locale, code),
            market=code,
            locale=locale,
            currency=currency,
            market_name=name,
            tax_inclusive=inclusive,
        )
        for code, name, currency, locale, inclusive in markets
    ]
    return sorted(shops, key=lambda shop: shop.currency != home_currency)


def best_for(accept_language: str | None, shops: list[Storefront]) -> Storefront:
    """The storefront whose language a browser's Accept-Language asks for first; the first
    storefront when it asks for none of them."""
    wanted = [
        part.split(";")[0].strip().replace("-", "_")
        for part in (accept_language or "").split(",")
        if part.strip() and not part.strip().startswith("*")
    ]
    found = negotiate_locale(wanted, [shop.babel for shop in shops]) if wanted else None
    if found is None and wanted:
        # "de" or "de-AT" fits de-DE when no storefront has the very same.
        languages = {shop.language: shop.babel for shop in reversed(shops)}
        found = next(
            (languages[w.split("_")[0]] for w in wanted if w.split("_")[0] in languages), None
        )
    return next((shop for shop in shops if shop.babel == found), shops[0])
