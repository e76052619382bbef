"""Black Friday pricing's rules: how much a code takes off, how that is split over the lines,
the tax worked out again on what is left, in currencies with 0, 2 and 3 minor-unit places;
and what a scheduled sale sells a SKU for, when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.kernel.errors import DuplicateCurrency
from colonnade.kernel.money import Money
from colonnade.modules.pricing.domain import (
    Market,
    Sale,
    ShelfPrice,
    discounted,
    next_change,
    on_sale,
    quote,
    sale,
)
from colonnade.modules.promotions import domain
from colonnade.modules.promotions.domain import (
    Basket,
    InvalidPromotion,
    InvalidPromotionCode,
    InvalidPromotionWindow,
    PromotionCustomerLimitReached,
    PromotionCustomersOnly,
    PromotionExpired,
    PromotionMinimumNotMet,
    PromotionNotInCurrency,
    PromotionNotInMarket,
    PromotionNotStarted,
    PromotionUsedUp,
)

NOW = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
# No minor units, two, three.
CURRENCIES = ["JPY", "USD", "BHD"]


def promotion(**rules: object) -> domain.Promotion:
    fields: dict[str, object] = {
        "id": "p-1",
        "code": "bf26",
        "title": None,
        "percent_off": 20,
        "amount_off": (),
        "min_subtotal": (),
        "markets": (),
        "customers_only": False,
        "usage_limit": None,
        "per_customer_limit": None,
        "starts_at": NOW - timedelta(hours=1),
        "ends_at": NOW + timedelta(hours=1),
    }
    fields.update(rules)
    return domain.promotion(**fields)  # type: ignore[arg-type]


def basket(*amounts: int, currency: str = "USD", customer: str | None = None) -> Basket:
    return Basket(
        market="US",
        currency=currency,
        lines=tuple((f"SKU-{i}", amount) for i, amount in enumerate(amounts)),
        customer_id=customer,
    )


@given(
    total_share=st.floats(min_value=0, max_value=1),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30),
)
def test_an_allocation_adds_up_exactly_and_no_line_gets_more_than_it_costs(
    total_share: float, weights: list[int]
) -> None:
    total = int(sum(weights) * total_share)

    parts = domain.allocate(total, weights)

    assert sum(parts) == total
    assert all(0 <= part <= weight for part, weight in zip(parts, weights, strict=True))
    # Proportional to within one minor unit.
    whole = sum(weights) or 1
    assert all(abs(part - total * w / whole) < 1 for part, w in zip(parts, weights, strict=True))


def test_ties_go_to_the_earlier_line_so_a_cart_always_splits_alike() -> None:
    assert domain.allocate(1, [100, 100, 100]) == [1, 0, 0]
    assert domain.allocate(2, [100, 100, 100]) == [1, 1, 0]


@given(
    currency=st.sampled_from(CURRENCIES),
    percent=st.integers(min_value=1, max_value=100),
    amounts=st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=10),
    tax_inclusive=st.booleans(),
)
def test_a_discounted_quote_adds_up_in_every_currency(
    currency: str, percent: int, amounts: list[int], tax_inclusive: bool
) -> None:
    market = Market("XX", "Market", currency, "en-US", tax_inclusive, Decimal("0.19"))
    lines = [(f"SKU-{i}", 1) for i in range(len(amounts))]
    prices = {f"SKU-{i}": Money(a, currency) for i, a in enumerate(amounts)}
    full = quote(market, lines, prices)
    cart = Basket("XX", currency, tuple((ln.sku, ln.line_total.amount) for ln in full.lines), None)
    off = domain.line_discounts(promotion(percent_off=percent), cart)

    priced = discounted(full, off)

    assert priced.discount.amount == domain.discount(promotion(percent_off=percent), cart)
    assert priced.subtotal.amount == full.subtotal.amount - priced.discount.amount
    for line in priced.lines:
        assert line.line_total.amount + line.discount.amount == line.unit_price.amount
        assert line.line_total.amount >= 0
    assert priced.tax == sum((ln.tax for ln in priced.lines), Money.zero(currency))
    expected_total = priced.subtotal if tax_inclusive else priced.subtotal + priced.tax
    assert priced.total == expected_total


def test_a_percentage_is_rounded_once_for_the_cart_half_up() -> None:
    # 20% of 3999 is 799.8 -> 800; in yen 20% of 1,235 is 247.
    assert domain.discount(promotion(), basket(1000, 2999)) == 800
    assert domain.discount(promotion(), basket(1235, currency="JPY")) == 247


def test_a_fixed_amount_never_takes_off_more_than_the_cart_costs() -> None:
    ten = promotion(percent_off=None, amount_off=(Money(1000, "USD"),))
    assert domain.discount(ten, basket(300)) == 300
    assert domain.discount(ten, basket(5000)) == 1000


def test_the_tax_is_worked_out_on_what_is_left_of_each_line() -> None:
    # Germany: prices include 19% VAT; half off 119.00 leaves 59.50, of which 9.50 is tax.
    market = Market("DE", "Germany", "EUR", "de-DE", True, Decimal("0.19"))
    full = quote(market, [("MUG", 1)], {"MUG": Money(11900, "EUR")})

    priced = discounted(full, {"MUG": 5950})

    assert priced.lines[0].tax == Money(950, "EUR")
    assert priced.total == Money(5950, "EUR")


@pytest.mark.parametrize(
    ("rules", "cart", "refusal"),
    [
        ({"starts_at": NOW + timedelta(minutes=1)}, basket(100), PromotionNotStarted),
        ({"ends_at": NOW}, basket(100), PromotionExpired),
        ({"markets": ("DE",)}, basket(100), PromotionNotInMarket),
        ({"customers_only": True}, basket(100), PromotionCustomersOnly),
        (
            {"percent_off": None, "amount_off": (Money(500, "EUR"),)},
            basket(100),
            PromotionNotInCurrency,
        ),
        ({"min_subtotal": (Money(5000, "USD"),)}, basket(4999), PromotionMinimumNotMet),
    ],
)
def test_a_promotion_that_cannot_apply_says_why(
    rules: dict[str, object], cart: Basket, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        domain.check(promotion(**rules), cart, NOW)


def test_the_window_is_half_open_and_the_minimum_is_inclusive() -> None:
    at_start = promotion(starts_at=NOW, ends_at=NOW + timedelta(hours=1))
    domain.check(at_start, basket(100), NOW)
    domain.check(promotion(min_subtotal=(Money(5000, "USD"),)), basket(5000), NOW)


def test_limits_count_every_use_and_each_customers_own() -> None:
    limited = promotion(usage_limit=100, per_customer_limit=2)
    domain.check_uses(limited, 99, 1)
    with pytest.raises(PromotionUsedUp):
        domain.check_uses(limited, 100, 0)
    with pytest.raises(PromotionCustomerLimitReached):
        domain.check_uses(limited, 5, 2)


@pytest.mark.parametrize(
    ("rules", "refusal"),
    [
        ({"percent_off": None}, InvalidPromotion),
        ({"amount_off": (Money(100, "USD"),)}, InvalidPromotion),
        ({"percent_off": 0}, InvalidPromotion),
        ({"percent_off": 101}, InvalidPromotion),
        ({"usage_limit": 0}, InvalidPromotion),
        ({"code": "no spaces"}, InvalidPromotionCode),
        ({"code": "ab"}, InvalidPromotionCode),
        ({"ends_at": NOW - timedelta(hours=2)}, InvalidPromotionWindow),
        (
            {"percent_off": None, "amount_off": (Money(100, "USD"), Money(200, "USD"))},
            DuplicateCurrency,
        ),
        ({"markets": ("US", "US")}, InvalidPromotion),
    ],
)
def test_a_bad_promotion_is_refused_precisely(
    rules: dict[str, object], refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        promotion(**rules)


def test_codes_are_kept_in_upper_case() -> None:
    assert promotion(code="Black-Friday_26").code == "BLACK-FRIDAY_26"


def a_sale(percent: int | None, prices: dict[str, Money | None], **window: datetime) -> Sale:
    market = Market("JP", "Japan", "JPY", "ja-JP", True, Decimal("0.10"))
    return sale(
        id="s-1",
        name="Black Friday",
        market=market,
        percent_off=percent,
        starts_at=window.get("starts_at", NOW),
        ends_at=window.get("ends_at"),
        prices=list(prices.items()),
    )


def test_a_sale_price_is_its_fixed_price_or_its_percentage_rounded_half_up() -> None:
    bf = a_sale(15, {"MUG": None, "TEE": Money(1999, "JPY")})

    shelf = on_sale({"MUG": Money(1235, "JPY"), "TEE": Money(2500, "JPY")}, [bf], NOW)

    # 85% of 1,235 yen is 1,049.75 -> 1,050.
    assert shelf["MUG"] == ShelfPrice(Money(1050, "JPY"), Money(1235, "JPY"))
    assert shelf["TEE"] == ShelfPrice(Money(1999, "JPY"), Money(2500, "JPY"))


def test_a_sale_never_raises_a_price_and_runs_only_in_its_window() -> None:
    bf = a_sale(None, {"MUG": Money(1500, "JPY")}, ends_at=NOW + timedelta(days=1))
    regular = {"MUG": Money(1000, "JPY")}

    assert on_sale(regular, [bf], NOW)["MUG"] == ShelfPrice(Money(1000, "JPY"), None)
    cheaper = a_sale(None, {"MUG": Money(900, "JPY")}, ends_at=NOW + timedelta(days=1))
    assert on_sale(regular, [cheaper], NOW - timedelta(seconds=1))["MUG"].compare_at is None
    assert on_sale(regular, [cheaper], NOW)["MUG"].price == Money(900, "JPY")
    assert on_sale(regular, [cheaper], NOW + timedelta(days=1))["MUG"].compare_at is None
    assert next_change([cheaper], NOW - timedelta(hours=1)) == NOW
    assert next_change([cheaper], NOW) == NOW + timedelta(days=1)


# --- several promotions: targets, buy X get Y, stacking ------------------------------------


@st.composite
def promotions_and_basket(draw: st.DrawFn) -> tuple[list[domain.Promotion], Basket]:
    quantities = draw(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5))
    lines = tuple(
        domain.BasketLine(f"SKU-{i}", draw(st.integers(0, 10**6)) * q, q)
        for i, q in enumerate(quantities)
    )
    made = []
    for n in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["percent", "amount", "bxgy"]))
        skus = draw(st.lists(st.sampled_from([ln.sku for ln in lines]), unique=True, max_size=3))
        made.append(
            promotion(
                id=f"p-{n}",
                code=None,
                title=f"Promotion {n}",
                percent_off=None if kind == "amount" else draw(st.integers(1, 100)),
                amount_off=(Money(draw(st.integers(1, 10**6)), "USD"),) if kind == "amount" else (),
                buy_quantity=draw(st.integers(1, 3)) if kind == "bxgy" else None,
                get_quantity=draw(st.integers(1, 3)) if kind == "bxgy" else None,
                target=domain.Target(skus=tuple(skus)),
                combines=draw(st.booleans()),
            )
        )
    return made, Basket("US", "USD", lines, None)


@given(promotions_and_basket(), st.randoms())
def test_a_choice_never_takes_off_more_than_a_line_costs_and_does_not_depend_on_order(
    given_: tuple[list[domain.Promotion], Basket], shuffler: object
) -> None:
    made, basket = given_
    choice = domain.choose(made, basket)

    taken = choice.line_discounts()
    assert all(0 <= taken[ln.sku] <= ln.amount for ln in basket.lines)
    assert choice.total == sum(taken.values())
    # Each promotion either applies or is declined with its reason, never both.
    applied = {a.promotion.id for a in choice.applied}
    declined = {p.id for p, _ in choice.declined}
    assert applied.isdisjoint(declined)
    assert applied | declined == {p.id for p in made}
    # Alone, no promotion that does not combine takes off more than the choice.
    assert all(domain.discount(p, basket) <= choice.total for p in made if not p.combines)
    shuffled = list(made)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    again = domain.choose(shuffled, basket)
    assert [a.promotion.id for a in again.applied] == [a.promotion.id for a in choice.applied]
    assert again.line_discounts() == taken


def test_buy_two_get_one_gives_the_cheapest_of_each_group_of_three() -> None:
    three_for_two = promotion(percent_off=100, buy_quantity=2, get_quantity=1)
    cart = Basket("US", "USD", (("MUG", 3000, 3), ("CUP", 1200, 2)), None)

    # 10, 10, 10 | 6, 6: the first group's third mug; the cups make no whole group.
    assert domain.line_discounts(three_for_two, cart) == {"MUG": 1000, "CUP": 0}
    half_off_second = promotion(percent_off=50, buy_quantity=1, get_quantity=1)
    # 10 | 10 -> 5 off; 10 | 6 -> 3 off; 6 left over.
    assert domain.line_discounts(half_off_second, cart) == {"MUG": 500, "CUP": 300}


def test_a_target_takes_off_its_skus_products_and_categories_only() -> None:
    cart = Basket(
        "US",
        "USD",
        (
            domain.BasketLine("MUG", 1000, 1, "p-mug", frozenset({"mugs", "kitchen"})),
            domain.BasketLine("TEE", 2000, 1, "p-tee", frozenset({"clothes"})),
            domain.BasketLine("CAP", 500, 1, "p-cap", frozenset()),
        ),
        None,
    )
    kitchen = promotion(percent_off=10, target=domain.Target(categories=("kitchen",)))
    caps = promotion(percent_off=10, target=domain.Target(products=("p-cap",), skus=("TEE",)))

    assert domain.line_discounts(kitchen, cart) == {"MUG": 100, "TEE": 0, "CAP": 0}
    assert domain.line_discounts(caps, cart) == {"MUG": 0, "TEE": 200, "CAP": 50}
    with pytest.raises(domain.PromotionNoMatchingItems):
        domain.check(promotion(target=domain.Target(categories=("garden",))), cart, NOW)


def test_combinable_promotions_apply_in_turn_on_what_is_left_and_an_exclusive_one_alone() -> None:
    ten = promotion(id="p-ten", code=None, title="Ten", percent_off=10, combines=True)
    five = promotion(id="p-five", percent_off=None, amount_off=(Money(500, "USD"),), combines=True)
    fifteen = promotion(id="p-15", code="FIFTEEN", percent_off=15)
    cart = basket(10000)

    # 10% of 100.00, then 5.00: 15.00; the exclusive 15% ties, and the combination wins ties.
    together = domain.choose([five, fifteen, ten], cart)
    assert [(a.promotion.id, a.total) for a in together.applied] == [
        ("p-ten", 1000),
        ("p-five", 500),
    ]
    assert [(p.id, why.code) for p, why in together.declined] == [
        ("p-15", "promotion_not_combinable")
    ]
    twenty = promotion(id="p-20", code="TWENTY", percent_off=20)
    alone = domain.choose([five, twenty, ten], cart)
    assert [(a.promotion.id, a.total) for a in alone.applied] == [("p-20", 2000)]
    assert {p.id for p, _ in alone.declined} == {"p-ten", "p-five"}


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"code": None, "title": None}, "title"),
        ({"buy_quantity": 2}, "buy_quantity"),
        ({"buy_quantity": 101, "get_quantity": 1}, "buy_quantity"),
        (
            {
                "percent_off": None,
                "amount_off": (Money(100, "USD"),),
                "buy_quantity": 1,
                "get_quantity": 1,
            },
            "percent_off",
        ),
        ({"target": domain.Target(skus=("A", "A"))}, "skus"),
        ({"target": domain.Target(categories=("",))}, "categories"),
    ],
)
def test_a_bad_automatic_or_targeted_promotion_names_its_field(
    rules: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidPromotion) as refused:
        promotion(**rules)
    assert refused.value.extensions["field"] == field
