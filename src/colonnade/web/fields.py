"""The shapes of the shop's common inputs, as its OpenAPI document declares them.

Each rule here is one the shop's domain code already enforces with its own precise problem
(`unknown_currency`, `invalid_sku`...), so these types only *declare* the rule: validating it
again in pydantic would answer the generic `invalid_input` instead. The contract test
(schemathesis, every check) keeps declaration and enforcement equal in both directions.
Date-times are the exception: pydantic's lax parsing took `0.5` for a date, so they are
checked here, and only RFC 3339 passes.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from babel.numbers import list_currencies
from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, StrictStr

from colonnade.kernel.shapes import IDEMPOTENCY_KEY, LOCALE_TAG, PROMOTION_CODE


@cache
def currency_codes() -> list[str]:
    # The codes kernel.money accepts: Babel's ISO 4217 list.
    return sorted(list_currencies())


def declared(**rules: Any) -> Any:
    """A field whose schema states `rules` that the domain code checks itself."""
    return Field(json_schema_extra=rules)


CurrencyCode = Annotated[
    StrictStr,
    Field(json_schema_extra=lambda schema: schema.update(enum=currency_codes())),
]
"""An ISO 4217 currency code, such as USD."""

MARKET_CODE_PATTERN = r"^[A-Z]{2,10}$"
MarketCode = Annotated[StrictStr, declared(pattern=MARKET_CODE_PATTERN)]
"""A market's code: 2 to 10 capital letters, such as US or EU."""

MarketRef = Annotated[StrictStr, Field(pattern=MARKET_CODE_PATTERN)]
"""A market named where no module checks the code's shape itself (a filter, a list)."""

LOCALE_PATTERN = f"^{LOCALE_TAG}$"
Locale = Annotated[StrictStr, declared(pattern=LOCALE_PATTERN)]
"""A BCP 47 tag Babel knows, such as en-US or ja; case does not matter."""

# Regular expression dialects disagree on white space: JSON Schema's (ECMA 262) counts U+FEFF
# and not U+001C-U+001F or U+0085, Python's str.strip() the other way round. These patterns
# mean the same in both.
SPACE = r"[\t\n\v\f\r ]"
"""A white space character in every dialect."""
NOT_SPACE = r"(?:[^\s\x1c-\x1f\x85]|\ufeff)"
"""A character Python's str.strip() keeps, in every dialect; as a pattern, it matches text
that is more than white space."""

SKU_MAX_LENGTH = 100
# At least one character that is not white space; at most SKU_MAX_LENGTH.
Sku = Annotated[StrictStr, declared(minLength=1, maxLength=SKU_MAX_LENGTH, pattern=NOT_SPACE)]
"""A variant's SKU."""

# The same rule as the card number guard's (web/cards.py): 13 or more digits in a row may be
# a card number, so no integer field needs or takes one.
MAX_WHOLE_NUMBER = 999_999_999_999


def _integral(value: object) -> object:
    # JSON Schema counts 3.0 as an integer, so a client may send it for one.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""Makes a StrictInt take 3.0 as JSON Schema does (never 3.5, "3" or true). It goes last in
the Annotated, after the bounds: pydantic declares bounds placed after it as unknown keys."""

# The domain refuses a negative count with its own problem; the upper bound is pydantic's.
Count = Annotated[StrictInt, declared(minimum=0), Field(le=MAX_WHOLE_NUMBER), INTEGRAL]
"""A whole number of units, never negative."""


WholeNumber = Annotated[StrictInt, INTEGRAL]
"""An integer as JSON Schema has it: 2 and 2.0 pass; 2.5, "2" and true do not."""

IDEMPOTENCY_KEY_PATTERN = f"^{IDEMPOTENCY_KEY}$"

PromotionCode = Annotated[StrictStr, declared(pattern=f"^{PROMOTION_CODE}$")]
"""A discount code; a malformed one is the promotions module's invalid_promotion_code."""
"""An Idempotency-Key header: 8 to 200 letters, digits, '-', '_', ':' or '.' (the checkout's
rule, which every route taking the header follows)."""

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 date-time with an offset, such as 2026-11-27T00:00:00Z")
    if not isinstance(value, str | datetime):
        raise ValueError("an RFC 3339 date-time is a string")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("an RFC 3339 date-time names its offset (Z or +01:00)")
    return value


Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_aware)]
"""A moment as RFC 3339 says (2026-11-27T00:00:00Z); numbers and bare dates are refused."""
