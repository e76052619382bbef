"""Promotions' rules: what a discount code is, whether it applies to a cart, how much it takes
off and how that is spread over the lines.

Pure: no I/O. Amounts are whole minor units. A discount is worked out on the cart's lines as
priced (after any tax they carry), rounded once for the whole cart, then allocated to the
lines by largest remainder, so the lines' discounts always add up to it exactly.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from colonnade.kernel.errors import Conflict, DuplicateCurrency, InvalidInput
from colonnade.kernel.money import Money
from colonnade.kernel.shapes import PROMOTION_CODE

_CODE = re.compile(PROMOTION_CODE)
MAX_TITLE = 200
MAX_MARKETS = 50
MAX_BATCH = 1_000_000
# No 0/O, 1/I/L or U: a code read off a flyer or a screen is typed right.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


# --- errors ---------------------------------------------------------------------------------


class InvalidPromotionCode(InvalidInput):
    code = "invalid_promotion_code"

    def __init__(self, code: str) -> None:
        super().__init__(
            "a promotion code is 3 to 40 letters, digits, '-' or '_', starting with a letter "
            f"or digit; got {code[:50]!r}",
        )


class InvalidPromotion(InvalidInput):
    code = "invalid_promotion"

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail, field=field)


class InvalidPromotionWindow(InvalidInput):
    code = "invalid_promotion_window"

    def __init__(self, starts_at: datetime, ends_at: datetime) -> None:
        super().__init__(
            f"a promotion ends after it starts; it was to start at {starts_at.isoformat()} and "
            f"end at {ends_at.isoformat()}",
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
        )


class PromotionCodeTaken(Conflict):
    code = "promotion_code_taken"

    def __init__(self, code: str) -> None:
        super().__init__(
            f"another promotion has the code {code} (codes are the same whatever their case)",
            promotion_code=code,
        )


class UnknownPromotionCode(InvalidInput):
    code = "unknown_promotion_code"

    def __init__(self, code: str) -> None:
        super().__init__(f"there is no promotion with the code {code}", promotion_code=code)


class PromotionNotApplicable(Conflict):
    """A code that exists but cannot take anything off this cart now; each reason has its own
    code, and the cart shows the same reason when a code it holds stops applying."""

    def __init__(self, promotion_code: str, detail: str, **extensions: object) -> None:
        super().__init__(detail, promotion_code=promotion_code, **extensions)


class PromotionNotStarted(PromotionNotApplicable):
    code = "promotion_not_started"

    def __init__(self, promotion_code: str, starts_at: datetime) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} starts at {starts_at.isoformat()}",
            starts_at=starts_at.isoformat(),
        )


class PromotionExpired(PromotionNotApplicable):
    code = "promotion_expired"

    def __init__(self, promotion_code: str, ends_at: datetime) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} ended at {ends_at.isoformat()}",
            ends_at=ends_at.isoformat(),
        )


class PromotionUsedUp(PromotionNotApplicable):
    code = "promotion_used_up"

    def __init__(self, promotion_code: str, usage_limit: int) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} has been used its {usage_limit} times",
            usage_limit=usage_limit,
        )


class PromotionCodeUsed(PromotionNotApplicable):
    code = "promotion_code_used"

    def __init__(self, promotion_code: str) -> None:
        super().__init__(
            promotion_code,
            f"the code {promotion_code} has been used: each code of its batch is for one order",
        )


class InvalidCodeCount(InvalidInput):
    code = "invalid_code_count"

    def __init__(self, count: object) -> None:
        super().__init__(
            f"a batch holds 1 to {MAX_BATCH:,} codes; got {count!r}", count=repr(count)
        )


class PromotionCustomerLimitReached(PromotionNotApplicable):
    code = "promotion_customer_limit_reached"

    def __init__(self, promotion_code: str, per_customer: int) -> None:
        super().__init__(
            promotion_code,
            f"you have used the promotion {promotion_code} the {per_customer} times each "
            "customer may",
            per_customer_limit=per_customer,
        )


class PromotionCustomersOnly(PromotionNotApplicable):
    code = "promotion_customers_only"

    def __init__(self, promotion_code: str) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} is for signed-in customers; sign in and use a "
            "cart of your own",
        )


class PromotionNotInMarket(PromotionNotApplicable):
    code = "promotion_not_in_market"

    def __init__(self, promotion_code: str, market: str, markets: Sequence[str]) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} is not offered in market {market} "
            f"(only in {', '.join(markets)})",
            market=market,
            markets=list(markets),
        )


class PromotionNotInCurrency(PromotionNotApplicable):
    code = "promotion_not_in_currency"

    def __init__(self, promotion_code: str, currency: str) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} takes a fixed amount off, but none in {currency}",
            currency=currency,
        )


class PromotionMinimumNotMet(PromotionNotApplicable):
    code = "promotion_minimum_not_met"

    def __init__(self, promotion_code: str, minimum: Money, subtotal: Money) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} needs a subtotal of at least {minimum.amount} "
            f"{minimum.currency} minor units; the cart's is {subtotal.amount}",
            minimum=minimum.as_dict(),
            subtotal=subtotal.as_dict(),
        )


# --- a promotion ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promotion:
    """A discount code: what it takes off, when, where, and how often."""

    id: str
    code: str
    title: str | None
    # Exactly one of the two: a percentage off the cart, or a fixed amount per currency.
    percent_off: int | None
    amount_off: Mapping[str, Money]
    # The cart's subtotal, in its currency, must reach this (no entry: no minimum there).
    min_subtotal: Mapping[str, Money]
    # Markets it is offered in; empty means every market.
    markets: tuple[str, ...]
    customers_only: bool
    usage_limit: int | None
    per_customer_limit: int | None
    starts_at: datetime
    ends_at: datetime | None
    used: int = 0

    def running(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


def batch_code(promotion_code: str) -> str:
    """A new single-use code for a promotion's batch: its code's first letters, then twelve
    random characters (30**12 of them: guessing one is hopeless, and the batch's codes are
    unique by the database's key)."""
    random = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{promotion_code[:12]}-{random[:4]}-{random[4:8]}-{random[8:]}"


def checked_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise InvalidCodeCount(count)
    return count


def normalized_code(code: str) -> str:
    """The code as it is kept and compared: upper case. InvalidPromotionCode if malformed."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidPromotionCode(code if isinstance(code, str) else repr(code))
    return code.upper()


def promotion(
    *,
    id: str,
    code: str,
    title: str | None,
    percent_off: int | None,
    amount_off: Sequence[Money],
    min_subtotal: Sequence[Money],
    markets: Sequence[str],
    customers_only: bool,
    usage_limit: int | None,
    per_customer_limit: int | None,
    starts_at: datetime,
    ends_at: datetime | None,
) -> Promotion:
    """A valid new promotion, or the first thing wrong with it."""
    if (percent_off is None) == (not amount_off):
        raise InvalidPromotion(
            "a promotion takes either a percentage (percent_off) or fixed amounts "
            "(amount_off) off, and not both",
            field="percent_off",
        )
    if percent_off is not None and not _whole(percent_off, 1, 100):
        raise InvalidPromotion(
            f"percent_off is a whole number from 1 to 100; got {percent_off!r}",
            field="percent_off",
        )
    if title is not None and (not title.strip() or len(title) > MAX_TITLE):
        raise InvalidPromotion(f"a title is 1 to {MAX_TITLE} characters", field="title")
    for name, limit in (("usage_limit", usage_limit), ("per_customer_limit", per_customer_limit)):
        if limit is not None and not _whole(limit, 1, 1_000_000_000):
            raise InvalidPromotion(
                f"{name} is a whole number of at least 1; got {limit!r}", field=name
            )
    if len(markets) > MAX_MARKETS or len(set(markets)) != len(markets):
        raise InvalidPromotion(
            f"markets lists at most {MAX_MARKETS} markets, each once", field="markets"
        )
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidPromotionWindow(starts_at, ends_at)
    return Promotion(
        id=id,
        code=normalized_code(code),
        title=title,
        percent_off=percent_off,
        amount_off=_by_currency(code, amount_off, "amount_off", positive=True),
        min_subtotal=_by_currency(code, min_subtotal, "min_subtotal", positive=False),
        markets=tuple(markets),
        customers_only=customers_only,
        usage_limit=usage_limit,
        per_customer_limit=per_customer_limit,
        starts_at=starts_at,
        ends_at=ends_at,
    )


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _by_currency(
    code: str, amounts: Sequence[Money], field: str, *, positive: bool
) -> dict[str, Money]:
    found: dict[str, Money] = {}
    for amount in amounts:
        if amount.currency in found:
            raise DuplicateCurrency(code, amount.currency)
        if amount.amount < (1 if positive else 0):
            raise InvalidPromotion(
                f"{field} in {amount.currency} must be "
                + ("more than nothing" if positive else "zero or more"),
                field=field,
            )
        found[amount.currency] = amount
    return {currency: found[currency] for currency in sorted(found)}


# --- whether and how much it applies -------------------------------------------------------


class PricedLine(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def line_total(self) -> Money: ...


@dataclass(frozen=True, slots=True)
class Basket:
    """What a promotion is weighed against: a priced cart, and who is buying it."""

    market: str
    currency: str
    # Each line's SKU and what it costs as priced, in the cart's order.
    lines: tuple[tuple[str, int], ...]
    customer_id: str | None

    @classmethod
    def of(
        cls, market: str, currency: str, lines: Iterable[PricedLine], customer_id: str | None
    ) -> Basket:
        """The basket of a priced cart's lines."""
        return cls(
            market, currency, tuple((ln.sku, ln.line_total.amount) for ln in lines), customer_id
        )

    @property
    def subtotal(self) -> Money:
        return Money(sum(amount for _, amount in self.lines), self.currency)


def check(promotion: Promotion, basket: Basket, now: datetime) -> None:
    """Refuse, with its own reason, a promotion that cannot apply to this basket now; the
    usage limits are counted by the caller, which knows the uses."""
    if now < promotion.starts_at:
        raise PromotionNotStarted(promotion.code, promotion.starts_at)
    if promotion.ends_at is not None and now >= promotion.ends_at:
        raise PromotionExpired(promotion.code, promotion.ends_at)
    if promotion.markets and basket.market not in promotion.markets:
        raise PromotionNotInMarket(promotion.code, basket.market, promotion.markets)
    if promotion.customers_only and basket.customer_id is None:
        raise PromotionCustomersOnly(promotion.code)
    if promotion.percent_off is None and basket.currency not in promotion.amount_off:
        raise PromotionNotInCurrency(promotion.code, basket.currency)
    minimum = promotion.min_subtotal.get(basket.currency)
    if minimum is not None and basket.subtotal.amount < minimum.amount:
        raise PromotionMinimumNotMet(promotion.code, minimum, basket.subtotal)


def check_uses(promotion: Promotion, used: int, used_by_customer: int) -> None:
    """Refuse a use beyond the promotion's limits, given the uses already counted."""
    if promotion.usage_limit is not None and used >= promotion.usage_limit:
        raise PromotionUsedUp(promotion.code, promotion.usage_limit)
    if (
        promotion.per_customer_limit is not None
        and used_by_customer >= promotion.per_customer_limit
    ):
        raise PromotionCustomerLimitReached(promotion.code, promotion.per_customer_limit)


def discount(promotion: Promotion, basket: Basket) -> int:
    """How many minor units the promotion takes off the basket: never more than it costs."""
    subtotal = basket.subtotal
    if promotion.percent_off is not None:
        off = subtotal.scaled(Decimal(promotion.percent_off) / 100).amount
    else:
        off = promotion.amount_off[basket.currency].amount
    return min(off, subtotal.amount)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` minor units over lines in proportion to their weights (what each costs)
    by largest remainder: the parts add up to `total` exactly, none exceeds its weight, and
    ties go to the earlier line, so the same cart always splits the same way."""
    whole = sum(weights)
    if total < 0 or any(w < 0 for w in weights) or total > whole:
        raise ValueError(f"cannot allocate {total} over {list(weights)}")
    if whole == 0:
        return [0 for _ in weights]
    parts = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[i] += 1
    return parts


def line_discounts(promotion: Promotion, basket: Basket) -> dict[str, int]:
    """Each line's share of the promotion's discount, by SKU."""
    shares = allocate(discount(promotion, basket), [amount for _, amount in basket.lines])
    return {sku: share for (sku, _), share in zip(basket.lines, shares, strict=True)}
