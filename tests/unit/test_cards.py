"""What counts as a card number: 13 to 19 digits, grouped or not, that pass the Luhn check."""

from __future__ import annotations

import pytest

from colonnade.kernel.cards import (
    blot_card_numbers,
    contains_card_number,
    may_contain_card_number,
    passes_luhn,
)

TEST_CARDS = [
    "4242424242424242",
    "4242 4242 4242 4242",
    "5555-5555-5555-4444",
    "378282246310005",
    "3782 822463 10005",
    "6011111111111117",
]


@pytest.mark.parametrize("text", TEST_CARDS)
def test_well_known_test_card_numbers_are_found(text: str) -> None:
    assert contains_card_number(text)
    assert contains_card_number(f"please charge {text} thanks")


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # one digit off: fails Luhn
        "+1 (555) 123-4567",  # a phone number
        "+44 20 7946 0958",
        "order 100000000042",  # 12 digits: too short
        "424242424242",  # 12 digits even though Luhn-valid
        "00000000000000000",  # no issuer number starts with 0
        "12345678901234567890123",  # an identifier longer than any card number
        "0190f3c8-0000-7000-8000-000000000000",  # a UUID: digit groups glued to letters
        "SKU4242424242424242",
        "Flat 4, 22-24 Colonnade Row",
    ],
)
def test_numbers_that_are_not_card_numbers_pass(text: str) -> None:
    assert not contains_card_number(text)


def test_a_card_number_run_together_with_an_expiry_is_still_found() -> None:
    assert contains_card_number("4242 4242 4242 4242 12 27")


def test_a_card_number_dressed_as_a_payment_token_is_found() -> None:
    assert contains_card_number("tok_4242424242424242")


def test_luhn() -> None:
    assert passes_luhn("79927398713")
    assert not passes_luhn("79927398710")


def test_blotting_keeps_the_text_around_the_number() -> None:
    assert (
        blot_card_numbers("card 5555-5555-5555-4444, call 555 1234")
        == "card [card number], call 555 1234"
    )


def test_the_raw_body_pre_check_never_misses_a_plain_card_number() -> None:
    for card in TEST_CARDS:
        assert may_contain_card_number(f'{{"note": "{card}"}}'.encode())
    assert not may_contain_card_number(b'{"market": "US", "quantity": 12}')
