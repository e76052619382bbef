"""The storefront's forms read and checked: each field's error in the shopper's words (the
message ids the templates translate), before any service is asked. The rules are the store
API's (the orders module's address, the checkout's e-mail); a service's own refusal is still
shown if one slips by. Pure: no framework."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from colonnade.storefront.texts import N_

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
# Test cards and the processor's tokens: a card number is never a field of ours.
CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{1,64}$")
PAYMENT_METHODS = ("card", "bank_transfer", "gift_card")

# Address fields: (name, longest, required).
ADDRESS_FIELDS = (
    ("name", 200, True),
    ("line1", 200, True),
    ("line2", 200, False),
    ("postal_code", 20, True),
    ("city", 100, True),
    ("region", 100, False),
    ("country", 2, True),
    ("phone", 40, False),
)

REQUIRED = N_("This field is required.")
TOO_LONG = N_("This is too long.")
BAD_EMAIL = N_("Enter an e-mail address such as name@example.com.")
BAD_COUNTRY = N_("Choose a country.")
BAD_METHOD = N_("Choose how to pay.")
BAD_CARD = N_("Choose a card.")
BAD_GIFT_CARD = N_("Enter the gift card's code.")
TOO_SHORT = N_("Use at least 12 characters.")


@dataclass
class Checked:
    """What a form said, cleaned, and its fields' errors (message ids) by field name."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def checkout_form(form: dict[str, str]) -> Checked:
    values = {name: _text(form, name) for name, _, _ in ADDRESS_FIELDS}
    values["country"] = values["country"].upper()
    values["email"] = _text(form, "email")
    values["method"] = _text(form, "method")
    values["token"] = _text(form, "token")
    values["gift_card_code"] = _text(form, "gift_card_code")
    checked = Checked(values)
    if not values["email"]:
        checked.errors["email"] = REQUIRED
    elif len(values["email"]) > 254 or not EMAIL.match(values["email"]):
        checked.errors["email"] = BAD_EMAIL
    for name, longest, required in ADDRESS_FIELDS:
        if required and not values[name]:
            checked.errors[name] = REQUIRED
        elif len(values[name]) > longest:
            checked.errors[name] = TOO_LONG
    if "country" not in checked.errors and not COUNTRY.match(values["country"]):
        checked.errors["country"] = BAD_COUNTRY
    method = values["method"]
    if method not in PAYMENT_METHODS:
        checked.errors["method"] = BAD_METHOD
    elif method == "card" and not CARD_TOKEN.match(values["token"]):
        checked.errors["token"] = BAD_CARD
    elif method == "gift_card":
        if not values["gift_card_code"] or len(values["gift_card_code"]) > 64:
            checked.errors["gift_card_code"] = BAD_GIFT_CARD
        if values["token"] and not CARD_TOKEN.match(values["token"]):
            checked.errors["token"] = BAD_CARD
    return checked


def address_of(checked: Checked) -> dict[str, str]:
    """The shipping address as the checkout takes it: empty optional fields left out."""
    return {name: checked.values[name] for name, _, _ in ADDRESS_FIELDS if checked.values[name]}


def registration_form(form: dict[str, str]) -> Checked:
    values = {"email": _text(form, "email"), "name": _text(form, "name")}
    checked = Checked(values)
    password = form.get("password", "")
    if not values["name"]:
        checked.errors["name"] = REQUIRED
    elif len(values["name"]) > 200:
        checked.errors["name"] = TOO_LONG
    if not values["email"]:
        checked.errors["email"] = REQUIRED
    elif len(values["email"]) > 254 or not EMAIL.match(values["email"]):
        checked.errors["email"] = BAD_EMAIL
    if len(password) < 12:
        checked.errors["password"] = TOO_SHORT
    elif len(password) > 1024:
        checked.errors["password"] = TOO_LONG
    return checked


def quantity(raw: str | None) -> int | None:
    """Units a cart form asks for, 0 to 99; None for anything else."""
    text = (raw or "").strip()
    if not text.isdigit() or len(text) > 2:
        return None
    return int(text)
