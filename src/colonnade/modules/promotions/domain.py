"""Promotions' rules: what a discount code is, whether it applies to a cart, how much it takes
off and how that is spread over the lines.

Pure: no I/O. Amounts are whole minor units. A discount is worked out on the cart's lines as
priced (after any tax they carry), rounded once for the whole cart, then allocated to the
lines by largest remainder, so the lines' discounts always add up to it exactly.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from colonnade.kernel.errors import Conflict, DuplicateCurrency, InvalidInput
from colonnade.kernel.money import Money
from colonnade.kernel.shapes import PROMOTION_CODE

_CODE = re.compile(PROMOTION_CODE)
MAX_TITLE = 200
MAX_MARKETS = 50
MAX_TARGETS = 100
MAX_TARGET_LENGTH = 100
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


class PromotionNoMatchingItems(PromotionNotApplicable):
    code = "promotion_no_matching_items"

    def __init__(self, promotion_code: str, target: Target) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} takes off {target.described()}; the cart holds none",
            target=target.as_dict(),
        )


class PromotionQuantityNotMet(PromotionNotApplicable):
    code = "promotion_quantity_not_met"

    def __init__(self, promotion_code: str, buy: int, get: int, held: int) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} is buy {buy}, get {get}: the cart needs "
            f"{buy + get} of its items and holds {held}",
            buy_quantity=buy,
            get_quantity=get,
            held=held,
        )


class PromotionFirstOrderOnly(PromotionNotApplicable):
    code = "promotion_first_order_only"

    def __init__(self, promotion_code: str) -> None:
        super().__init__(
            promotion_code,
            f"the promotion {promotion_code} is for a signed-in customer's first order, and "
            "this customer has ordered before",
        )


class PromotionNotCombinable(PromotionNotApplicable):
    """Not a refusal of the cart: another promotion (or several together) takes more off,
    and this one does not combine with it."""

    code = "promotion_not_combinable"

    def __init__(self, promotion_code: str, detail: str, better: Sequence[str]) -> None:
        super().__init__(promotion_code, detail, applied=list(better))


# --- a promotion ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What a promotion takes off: these SKUs, every variant of these products, every product
    of these categories or of the categories below them. Empty: the whole cart."""

    skus: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not (self.skus or self.products or self.categories)

    @property
    def by_placement(self) -> bool:
        """Whether it needs to know each line's product and categories."""
        return bool(self.products or self.categories)

    def matches(self, line: BasketLine) -> bool:
        return (
            self.everything
            or line.sku in self.skus
            or (line.product is not None and line.product in self.products)
            or not line.categories.isdisjoint(self.categories)
        )

    def described(self) -> str:
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in (
                ("SKUs", self.skus),
                ("products", self.products),
                ("categories", self.categories),
            )
            if values
        ]
        return " or ".join(parts) or "the whole cart"

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "skus": list(self.skus),
            "products": list(self.products),
            "categories": list(self.categories),
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    """A discount: what it takes off, of what, when, where, how often, and with what else.

    A promotion is either a code shoppers enter, or automatic (no code: every cart that
    qualifies gets it)."""

    id: str
    # None for an automatic promotion.
    code: str | None
    title: str | None
    # Exactly one of the two: a percentage off, or a fixed amount per currency.
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
    target: Target = Target()
    # Buy X, get Y: of each buy + get matching items, the `get` cheapest have percent_off.
    buy_quantity: int | None = None
    get_quantity: int | None = None
    # Whether it applies together with other combinable promotions; one that does not is
    # taken alone, when it takes off more than the combinable ones together.
    combines: bool = False
    # Only for a signed-in customer who has never ordered (and once).
    first_order: bool = False

    @property
    def automatic(self) -> bool:
        return self.code is None

    @property
    def name(self) -> str:
        """What a shopper knows it by: its code, or an automatic promotion's title."""
        return self.code or self.title or self.id

    @property
    def counted_per_customer(self) -> bool:
        """Whether each customer's uses of it are counted (and its row locked meanwhile)."""
        return self.per_customer_limit is not None or self.first_order

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
    code: str | None,
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
    target: Target = Target(),
    buy_quantity: int | None = None,
    get_quantity: int | None = None,
    combines: bool = False,
    first_order: bool = False,
) -> Promotion:
    """A valid new promotion (automatic when it has no code), or the first thing wrong."""
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
    if code is None and title is None:
        raise InvalidPromotion(
            "an automatic promotion (one without a code) needs a title: it is what the cart "
            "shows shoppers",
            field="title",
        )
    for name, limit in (("usage_limit", usage_limit), ("per_customer_limit", per_customer_limit)):
        if limit is not None and not _whole(limit, 1, 1_000_000_000):
            raise InvalidPromotion(
                f"{name} is a whole number of at least 1; got {limit!r}", field=name
            )
    if len(markets) > MAX_MARKETS or len(set(markets)) != len(markets):
        raise InvalidPromotion(
            f"markets lists at most {MAX_MARKETS} markets, each once", field="markets"
        )
    for field, values in target.as_dict().items():
        if len(values) > MAX_TARGETS or len(set(values)) != len(values):
            raise InvalidPromotion(
                f"{field} lists at most {MAX_TARGETS} values, each once", field=field
            )
        if any(not value.strip() or len(value) > MAX_TARGET_LENGTH for value in values):
            raise InvalidPromotion(
                f"each of {field} is 1 to {MAX_TARGET_LENGTH} characters, not only spaces",
                field=field,
            )
    if (buy_quantity is None) != (get_quantity is None):
        raise InvalidPromotion(
            "buy X, get Y takes both buy_quantity and get_quantity", field="buy_quantity"
        )
    if buy_quantity is not None:
        for field, n in (("buy_quantity", buy_quantity), ("get_quantity", get_quantity)):
            if not _whole(n, 1, 100):
                raise InvalidPromotion(f"{field} is a whole number from 1 to 100", field=field)
        if percent_off is None:
            raise InvalidPromotion(
                "buy X, get Y takes a percentage off the items got (100: free), not an amount",
                field="percent_off",
            )
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidPromotionWindow(starts_at, ends_at)
    label = code or title or ""
    return Promotion(
        id=id,
        code=None if code is None else normalized_code(code),
        title=title,
        percent_off=percent_off,
        amount_off=_by_currency(label, amount_off, "amount_off", positive=True),
        min_subtotal=_by_currency(label, min_subtotal, "min_subtotal", positive=False),
        markets=tuple(markets),
        customers_only=customers_only,
        usage_limit=usage_limit,
        per_customer_limit=per_customer_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        target=target,
        buy_quantity=buy_quantity,
        get_quantity=get_quantity,
        combines=combines,
        first_order=first_order,
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
    def quantity(self) -> int: ...
    @property
    def line_total(self) -> Money: ...


class BasketLine(NamedTuple):
    sku: str
    # What the line costs as priced (sale prices included), before any promotion.
    amount: int
    quantity: int = 1
    # Where the catalog places the SKU: its product, and its category with those above it.
    # Known when a promotion targets products or categories.
    product: str | None = None
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Basket:
    """What a promotion is weighed against: a priced cart, and who is buying it."""

    market: str
    currency: str
    # The cart's lines in its order; plain (sku, amount) pairs are taken as lines of one.
    lines: tuple[BasketLine, ...]
    customer_id: str | None
    # Whether the customer has ordered before (known when a first-order promotion may apply).
    returning: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(BasketLine(*line) for line in self.lines))

    @classmethod
    def of(
        cls, market: str, currency: str, lines: Iterable[PricedLine], customer_id: str | None
    ) -> Basket:
        """The basket of a priced cart's lines."""
        return cls(
            market,
            currency,
            tuple(BasketLine(ln.sku, ln.line_total.amount, ln.quantity) for ln in lines),
            customer_id,
        )

    @property
    def subtotal(self) -> Money:
        return Money(sum(line.amount for line in self.lines), self.currency)

    def placed(self, placements: Mapping[str, tuple[str, frozenset[str]]]) -> Basket:
        """The basket with each line's product and categories, as the catalog places them."""
        return replace(
            self,
            lines=tuple(
                line._replace(product=found[0], categories=found[1])
                if (found := placements.get(line.sku)) is not None
                else line
                for line in self.lines
            ),
        )


def check(promotion: Promotion, basket: Basket, now: datetime) -> None:
    """Refuse, with its own reason, a promotion that cannot apply to this basket now; the
    usage limits are counted by the caller, which knows the uses."""
    name = promotion.name
    if now < promotion.starts_at:
        raise PromotionNotStarted(name, promotion.starts_at)
    if promotion.ends_at is not None and now >= promotion.ends_at:
        raise PromotionExpired(name, promotion.ends_at)
    if promotion.markets and basket.market not in promotion.markets:
        raise PromotionNotInMarket(name, basket.market, promotion.markets)
    if (promotion.customers_only or promotion.first_order) and basket.customer_id is None:
        raise PromotionCustomersOnly(name)
    if promotion.first_order and basket.returning:
        raise PromotionFirstOrderOnly(name)
    if promotion.percent_off is None and basket.currency not in promotion.amount_off:
        raise PromotionNotInCurrency(name, basket.currency)
    matching = [line for line in basket.lines if promotion.target.matches(line)]
    if not matching:
        raise PromotionNoMatchingItems(name, promotion.target)
    if promotion.buy_quantity is not None and promotion.get_quantity is not None:
        held = sum(line.quantity for line in matching)
        if held < promotion.buy_quantity + promotion.get_quantity:
            raise PromotionQuantityNotMet(
                name, promotion.buy_quantity, promotion.get_quantity, held
            )
    minimum = promotion.min_subtotal.get(basket.currency)
    if minimum is not None and basket.subtotal.amount < minimum.amount:
        raise PromotionMinimumNotMet(name, minimum, basket.subtotal)


def check_uses(promotion: Promotion, used: int, used_by_customer: int) -> None:
    """Refuse a use beyond the promotion's limits, given the uses already counted (a
    first-order promotion is used once per customer, even by checkouts at the same moment)."""
    if promotion.usage_limit is not None and used >= promotion.usage_limit:
        raise PromotionUsedUp(promotion.name, promotion.usage_limit)
    if promotion.first_order and used_by_customer >= 1:
        raise PromotionFirstOrderOnly(promotion.name)
    if (
        promotion.per_customer_limit is not None
        and used_by_customer >= promotion.per_customer_limit
    ):
        raise PromotionCustomerLimitReached(promotion.name, promotion.per_customer_limit)


def takes(promotion: Promotion, basket: Basket, left: Sequence[int]) -> list[int]:
    """What the promotion takes off each line, given what is left of each (what promotions
    applied before it left): never more than that. A percentage or an amount off is worked
    out once on the matching lines together, rounded half up, and spread over them by
    largest remainder; buy X, get Y takes percent_off each item got, rounded per item."""
    matching = [i for i, line in enumerate(basket.lines) if promotion.target.matches(line)]
    off = [0 for _ in basket.lines]
    if promotion.buy_quantity is not None and promotion.get_quantity is not None:
        got = _items_got(
            basket,
            left,
            matching,
            promotion.buy_quantity,
            promotion.get_quantity,
            Decimal(promotion.percent_off or 0) / 100,
        )
        for i, taken in got:
            off[i] += taken
        return off
    base = sum(left[i] for i in matching)
    if promotion.percent_off is not None:
        total = Money(base, basket.currency).scaled(Decimal(promotion.percent_off) / 100).amount
    else:
        total = min(promotion.amount_off[basket.currency].amount, base)
    for i, share in zip(matching, allocate(total, [left[i] for i in matching]), strict=True):
        off[i] = share
    return off


def _items_got(
    basket: Basket, left: Sequence[int], matching: Sequence[int], buy: int, get: int, share: Decimal
) -> Iterator[tuple[int, int]]:
    """(line, discount) for each item got free or cheaper: the matching items, dearest
    first, taken in groups of buy + get, of which the last `get` (the cheapest) are got."""
    items: list[tuple[int, int]] = []
    for i in matching:
        quantity = basket.lines[i].quantity
        if quantity <= 0:
            continue
        each, extra = divmod(left[i], quantity)
        items.extend((each + (1 if n < extra else 0), i) for n in range(quantity))
    items.sort(key=lambda item: (-item[0], item[1]))
    for start in range(0, len(items) - (buy + get) + 1, buy + get):
        for price, i in items[start + buy : start + buy + get]:
            yield i, Money(price, basket.currency).scaled(share).amount


def discount(promotion: Promotion, basket: Basket) -> int:
    """How many minor units the promotion alone takes off the basket."""
    return sum(takes(promotion, basket, [line.amount for line in basket.lines]))


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
    """Each line's share of the promotion's discount alone, by SKU."""
    shares = takes(promotion, basket, [line.amount for line in basket.lines])
    return {line.sku: share for line, share in zip(basket.lines, shares, strict=True)}


# --- which of several apply ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    """A promotion that applies, with what it takes off each of the basket's lines."""

    promotion: Promotion
    lines: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.lines)


@dataclass(frozen=True, slots=True)
class Choice:
    """The promotions that apply to a basket, and those that qualify but do not, and why."""

    basket: Basket
    applied: tuple[Applied, ...]
    declined: tuple[tuple[Promotion, PromotionNotCombinable], ...] = ()

    @property
    def total(self) -> int:
        return sum(a.total for a in self.applied)

    def line_discounts(self) -> dict[str, int]:
        """What all the applied promotions take off each line, by SKU."""
        return {
            line.sku: sum(a.lines[i] for a in self.applied)
            for i, line in enumerate(self.basket.lines)
        }

    def line_promotions(self) -> dict[str, tuple[str, ...]]:
        """The ids of the promotions that take something off each line, by SKU."""
        return {
            line.sku: tuple(a.promotion.id for a in self.applied if a.lines[i])
            for i, line in enumerate(self.basket.lines)
        }


def _precedence(promotion: Promotion) -> tuple[int, datetime, str]:
    # Items got first, then percentages, then fixed amounts: a percentage then works on
    # what is left after the items got, and a fixed amount is never shrunk by a percentage.
    kind = 0 if promotion.buy_quantity is not None else 1 if promotion.percent_off else 2
    return kind, promotion.starts_at, promotion.id


def choose(eligible: Sequence[Promotion], basket: Basket) -> Choice:
    """Which of these promotions (each already checked to apply to the basket) apply: every
    combinable one, each on what those before it left, or the one that does not combine and
    takes off the most alone, whichever takes off more. Ties go to the combinable ones, then
    by precedence; the same basket and promotions always choose alike."""
    amounts = [line.amount for line in basket.lines]
    stacked: list[Applied] = []
    declined: list[tuple[Promotion, PromotionNotCombinable]] = []
    left = list(amounts)
    for promotion in sorted((p for p in eligible if p.combines), key=_precedence):
        off = takes(promotion, basket, left)
        if not any(off):
            declined.append(
                (
                    promotion,
                    PromotionNotCombinable(
                        promotion.name,
                        f"the promotion {promotion.name} takes nothing more off: the "
                        "promotions applied before it leave nothing of its items",
                        [a.promotion.name for a in stacked],
                    ),
                )
            )
            continue
        stacked.append(Applied(promotion, tuple(off)))
        left = [have - taken for have, taken in zip(left, off, strict=True)]
    alone = sorted(
        (Applied(p, tuple(takes(p, basket, amounts))) for p in eligible if not p.combines),
        key=lambda a: (-a.total, _precedence(a.promotion)),
    )
    together = sum(a.total for a in stacked)
    if alone and alone[0].total > together:
        best = alone[0]
        for other in [*stacked, *alone[1:]]:
            declined.append(
                (
                    other.promotion,
                    PromotionNotCombinable(
                        other.promotion.name,
                        f"the promotion {best.promotion.name} takes off more and does not "
                        f"combine with others, so {other.promotion.name} does not apply",
                        [best.promotion.name],
                    ),
                )
            )
        return Choice(basket, (best,), tuple(declined))
    names = [a.promotion.name for a in stacked]
    for other in alone:
        declined.append(
            (
                other.promotion,
                PromotionNotCombinable(
                    other.promotion.name,
                    f"the promotion {other.promotion.name} does not combine with others, and "
                    + (
                        f"{', '.join(names)} take{'s' if len(names) == 1 else ''} off at least "
                        "as much"
                        if names
                        else "takes nothing off this cart"
                    ),
                    names,
                ),
            )
        )
    return Choice(basket, tuple(stacked), tuple(declined))
