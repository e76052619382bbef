"""The storefront's pure rules: which pages a browser's languages get, how each market writes
money, what a checkout form must hold, and that a session cookie cannot be forged."""

from __future__ import annotations

from colonnade.kernel.money import Money
from colonnade.storefront import forms
from colonnade.storefront.session import SessionSeal, fresh
from colonnade.storefront.shops import best_for, storefronts

MARKETS = [
    ("DE", "Deutschland", "EUR", "de-DE", True),
    ("JP", "日本", "JPY", "ja-JP", True),
    ("US", "United States", "USD", "en-US", False),
]
SHOPS = storefronts(MARKETS, home_currency="USD")


def test_each_market_has_a_prefix_of_its_language_and_the_home_currency_comes_first() -> None:
    assert [shop.prefix for shop in SHOPS] == ["en-us", "de-de", "ja-jp"]


def test_a_browser_gets_the_storefront_of_the_first_language_it_asks_for() -> None:
    assert best_for("de-DE,de;q=0.9,en;q=0.8", SHOPS).prefix == "de-de"
    assert best_for("ja", SHOPS).prefix == "ja-jp"
    assert best_for("de-AT", SHOPS).prefix == "de-de"
    assert best_for("fr-FR, *;q=0.5", SHOPS).prefix == "en-us"
    assert best_for(None, SHOPS).prefix == "en-us"


def test_money_is_written_the_way_each_market_writes_it() -> None:
    us, de, jp = SHOPS
    assert us.money(Money(123456, "USD")) == "$1,234.56"
    assert de.money(Money(123456, "EUR")).replace("\xa0", " ") == "1.234,56 €"
    assert jp.money({"amount": 2725, "currency": "JPY"}) in ("￥2,725", "¥2,725")


def test_a_checkout_form_names_each_field_it_lacks_and_takes_no_card_number_field() -> None:
    checked = forms.checkout_form({"email": "ada@", "method": "card", "token": "4242424242424242"})
    assert checked.errors == {
        "email": forms.BAD_EMAIL,
        "name": forms.REQUIRED,
        "line1": forms.REQUIRED,
        "postal_code": forms.REQUIRED,
        "city": forms.REQUIRED,
        "country": forms.REQUIRED,
        "token": forms.BAD_CARD,
    }
    good = forms.checkout_form(
        {
            "email": " ada@example.com ",
            "name": "Ada",
            "line1": "1 Row",
            "postal_code": "1",
            "city": "Town",
            "country": "us",
            "method": "bank_transfer",
        }
    )
    assert good.ok
    assert forms.address_of(good) == {
        "name": "Ada",
        "line1": "1 Row",
        "postal_code": "1",
        "city": "Town",
        "country": "US",
    }


def test_a_quantity_is_a_whole_number_from_0_to_99() -> None:
    assert [forms.quantity(raw) for raw in ("0", "7", "99", "100", "-1", "1.5", "", None)] == [
        0,
        7,
        99,
        None,
        None,
        None,
        None,
        None,
    ]


def test_a_session_opens_only_under_the_key_that_sealed_it() -> None:
    session = fresh().with_cart("DE", "cart-1")
    cookie = SessionSeal("a" * 40).seal(session)
    assert SessionSeal("a" * 40).open(cookie) == session
    assert SessionSeal("b" * 40).open(cookie) is None
    assert SessionSeal("a" * 40).open(cookie[:-2] + "xx") is None
    assert SessionSeal("a" * 40).open(None) is None
    assert session.form_matches(session.csrf)
    assert not session.form_matches("guess")
    assert not session.form_matches(None)
