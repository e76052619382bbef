"""Recognising payment card numbers (PANs) in text, so they can be refused or blotted out.

Card numbers never enter the shop: buyers pay with a payment provider's token. A digit run
counts as a card number when it has 13 to 19 digits, optionally grouped by single spaces or
dashes ("4242 4242 4242 4242", "5555-5555-5555-4444"), stands apart from letters, does not
start with 0 (no issuer number does) and passes the Luhn check, which phone and order numbers
almost always fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MIN_DIGITS = 13
MAX_DIGITS = 19

# Digit groups joined by single spaces or dashes; candidates are whole groups, so a card
# number followed by an expiry or a phone number in the same run is still found. A run glued
# to letters (directly or by a dash) is part of an identifier such as a UUID, not a number.
_RUN = re.compile(r"(?<![^\W_])(?<![^\W_]-)[0-9]+(?:[ -][0-9]+)*(?![^\W_])(?!-[^\W_])")
_GROUP = re.compile(r"[0-9]+")
# Cheap pre-filter for raw bodies: without 13 digits close together there is no card number.
_ROUGH = re.compile(rb"[0-9](?:[ -]?[0-9]){12}")
_ROUGH_TEXT = re.compile(_ROUGH.pattern.decode())


def passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and digits[0] != "0" and passes_luhn(digits)


def card_number_spans(text: str) -> Iterator[tuple[int, int]]:
    """Start and end offsets in `text` of each card number, left to right, not overlapping."""
    for run in _RUN.finditer(text):
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(run.group())]
        first = 0
        while first < len(groups):
            found = _longest_card_from(run.group(), groups, first)
            if found is None:
                first += 1
                continue
            last = found
            yield run.start() + groups[first][0], run.start() + groups[last][1]
            first = last + 1


def _longest_card_from(run: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """The index of the last group of the longest card number starting at group `first`."""
    digits = ""
    found = None
    for index in range(first, len(groups)):
        start, end = groups[index]
        digits += run[start:end]
        if len(digits) > MAX_DIGITS:
            break
        if _is_card_number(digits):
            found = index
    return found


def contains_card_number(text: str) -> bool:
    return next(card_number_spans(text), None) is not None


def may_contain_card_number(raw: bytes) -> bool:
    """False only when `raw` surely holds no card number written as plain digits."""
    return _ROUGH.search(raw) is not None


def blot_card_numbers(text: str, replacement: str = "[card number]") -> str:
    if _ROUGH_TEXT.search(text) is None:
        return text  # most logged text: ids, names, routes
    spans = list(card_number_spans(text))
    for start, end in reversed(spans):
        text = text[:start] + replacement + text[end:]
    return text
