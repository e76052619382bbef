"""Orders' pure rules: an order adds up, and its status only moves the allowed ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.kernel.money import Money
from colonnade.modules.orders import domain
from colonnade.modules.orders.domain import (
    SOURCES,
    Action,
    IllegalTransition,
    InvalidOrder,
    OrderLine,
    OrderState,
    OrderStatus,
    PaymentMismatch,
    RefundExceedsPayment,
    new_number,
    order_total,
    totals,
    valid_email,
)


def usd(amount: int) -> Money:
    return Money(amount, "USD")


def line(line_total: int, tax: int, quantity: int = 1, currency: str = "USD") -> OrderLine:
    return OrderLine(
        sku="MUG-RED",
        title="Red mug",
        quantity=quantity,
        unit_price=Money(line_total // max(quantity, 1), currency),
        line_total=Money(line_total, currency),
        tax=Money(tax, currency),
    )


def placed(total: int = 1000) -> OrderState:
    return OrderState.placed("order-1", usd(total))


# --- totals ------------------------------------------------------------------------------------


def test_tax_is_added_to_the_total_where_prices_exclude_it() -> None:
    added = totals([line(1000, 80), line(500, 40)], usd(300), False, "USD")
    assert (added.subtotal, added.tax, added.shipping, added.total) == (
        usd(1500),
        usd(120),
        usd(300),
        usd(1920),
    )


def test_tax_is_inside_the_total_where_prices_include_it() -> None:
    inside = totals([line(1190, 190)], usd(0), True, "USD")
    assert inside.total == usd(1190)
    assert inside.tax == usd(190)


@given(
    amounts=st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**8)), min_size=1, max_size=20
    ),
    shipping=st.integers(0, 10**6),
    tax_inclusive=st.booleans(),
)
def test_an_order_total_is_its_lines_plus_tax_plus_shipping(
    amounts: list[tuple[int, int]], shipping: int, tax_inclusive: bool
) -> None:
    lines = [line(total, tax) for total, tax in amounts]
    added = totals(lines, usd(shipping), tax_inclusive, "USD")
    subtotal = sum(total for total, _ in amounts)
    tax = sum(t for _, t in amounts)
    assert added.subtotal == usd(subtotal)
    assert added.tax == usd(tax)
    assert added.total == usd(subtotal + shipping + (0 if tax_inclusive else tax))
    assert added.total == order_total(added.subtotal, added.tax, added.shipping, tax_inclusive)


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="at least one line"):
        totals([], usd(0), False, "USD")


def test_an_order_is_in_one_currency() -> None:
    with pytest.raises(
        InvalidOrder, match=r"lines\.0\.unit_price is in EUR but the order is in USD"
    ):
        totals([line(1000, 0, currency="EUR")], usd(0), False, "USD")
    with pytest.raises(InvalidOrder, match="shipping is in EUR"):
        totals([line(1000, 0)], Money(100, "EUR"), False, "USD")


def test_a_line_needs_a_positive_quantity_and_no_negative_amounts() -> None:
    with pytest.raises(InvalidOrder, match="quantity must be"):
        totals([line(1000, 0, quantity=0)], usd(0), False, "USD")
    with pytest.raises(InvalidOrder, match="tax cannot be negative"):
        totals([line(1000, -1)], usd(0), False, "USD")


def test_order_numbers_are_short_and_unambiguous() -> None:
    numbers = {new_number() for _ in range(200)}
    assert len(numbers) == 200
    for number in numbers:
        assert number.startswith("C-")
        assert len(number) == 10
        assert not set(number[2:]) & set("01ILOU")


def test_an_email_is_kept_trimmed_and_lower_case() -> None:
    assert valid_email("  Ada@Example.COM ") == "ada@example.com"
    with pytest.raises(InvalidOrder, match="the e-mail address is not valid") as refused:
        valid_email("ada at example")
    # A refusal may be stored or logged, so it does not repeat the address.
    assert "ada at example" not in str(refused.value.problem())


# --- the state machine ------------------------------------------------------------------------


def test_an_order_goes_from_placed_to_delivered() -> None:
    state = placed().pay(usd(1000)).fulfil().ship().deliver()
    assert state.status == OrderStatus.DELIVERED
    assert state.paid == usd(1000)


def test_a_shipped_order_cannot_be_cancelled() -> None:
    shipped = placed().pay(usd(1000)).fulfil().ship()
    with pytest.raises(IllegalTransition) as refused:
        shipped.cancel()
    assert refused.value.detail == "an order that is shipped cannot be cancelled"
    assert refused.value.status == 409
    assert refused.value.code == "illegal_transition"


def test_an_order_is_paid_in_full_or_not_at_all() -> None:
    with pytest.raises(PaymentMismatch):
        placed().pay(usd(999))
    with pytest.raises(PaymentMismatch):
        placed().pay(Money(1000, "EUR"))


def test_paying_or_cancelling_again_changes_nothing() -> None:
    paid = placed().pay(usd(1000))
    assert paid.pay(usd(1000)) == paid
    cancelled = paid.cancel()
    assert cancelled.cancel() == cancelled


def test_a_partial_refund_keeps_the_status_and_a_full_one_ends_the_order() -> None:
    shipped = placed().pay(usd(1000)).fulfil().ship()
    partly = shipped.refund(usd(300))
    assert partly.status == OrderStatus.SHIPPED
    assert partly.refunded == usd(300)
    assert not partly.fully_refunded
    fully = partly.refund(usd(700))
    assert fully.status == OrderStatus.REFUNDED
    assert fully.fully_refunded


def test_a_refund_never_exceeds_the_payment() -> None:
    paid = placed().pay(usd(1000)).refund(usd(600))
    with pytest.raises(RefundExceedsPayment) as refused:
        paid.refund(usd(401))
    assert refused.value.code == "refund_exceeds_payment"
    assert refused.value.extensions["refundable"] == {"amount": 400, "currency": "USD"}


def test_an_unpaid_order_has_nothing_to_refund() -> None:
    with pytest.raises(IllegalTransition, match="placed cannot be refunded"):
        placed().refund(usd(1))


def test_a_cancelled_paid_order_records_its_money_going_back_and_stays_cancelled() -> None:
    cancelled = placed().pay(usd(1000)).cancel()
    refunded = cancelled.refund(usd(1000))
    assert refunded.status == OrderStatus.CANCELLED
    assert refunded.refunded == usd(1000)


def test_a_refund_is_more_than_nothing() -> None:
    with pytest.raises(InvalidOrder, match="more than nothing"):
        placed().pay(usd(1000)).refund(usd(0))


STEPS = st.lists(
    st.one_of(
        st.sampled_from(["pay", "fulfil", "ship", "deliver", "cancel"]).map(lambda a: (a, 0)),
        st.tuples(st.just("refund"), st.integers(1, 1200)),
        st.tuples(st.just("pay_wrong"), st.integers(1, 999)),
    ),
    max_size=30,
)
ALLOWED_NEXT = {
    OrderStatus.PLACED: {OrderStatus.PAID, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED},
    OrderStatus.FULFILLED: {OrderStatus.SHIPPED, OrderStatus.REFUNDED},
    OrderStatus.SHIPPED: {OrderStatus.DELIVERED, OrderStatus.REFUNDED},
    OrderStatus.DELIVERED: {OrderStatus.REFUNDED},
    OrderStatus.CANCELLED: set(),
    OrderStatus.REFUNDED: set(),
}


@given(steps=STEPS)
def test_no_sequence_of_actions_reaches_an_illegal_state(steps: list[tuple[str, int]]) -> None:
    state = placed(1000)
    for action, amount in steps:
        before = state
        try:
            if action == "pay":
                state = state.pay(usd(1000))
            elif action == "pay_wrong":
                state = state.pay(usd(amount))
            elif action == "refund":
                state = state.refund(usd(amount))
            else:
                state = getattr(state, action)()
        except (IllegalTransition, RefundExceedsPayment, PaymentMismatch):
            state = before
        # Every move is one the machine allows, or none.
        assert state.status == before.status or state.status in ALLOWED_NEXT[before.status]
        # Money: never refunded more than paid, paid is all or nothing, and only once.
        assert 0 <= state.refunded.amount <= state.paid.amount
        assert state.paid.amount in (0, 1000)
        assert state.refunded.amount >= before.refunded.amount
        assert (state.paid.amount == 0) == (state.status == OrderStatus.PLACED) or (
            state.status == OrderStatus.CANCELLED
        )
        if state.status == OrderStatus.REFUNDED:
            assert state.fully_refunded


DO = {
    Action.PAY: lambda state: state.pay(usd(1000)),
    Action.FULFIL: OrderState.fulfil,
    Action.SHIP: OrderState.ship,
    Action.DELIVER: OrderState.deliver,
    Action.CANCEL: OrderState.cancel,
    Action.REFUND: lambda state: state.refund(usd(1)),
}


@given(status=st.sampled_from(list(OrderStatus)), action=st.sampled_from(list(Action)))
def test_every_refusal_names_the_status_and_the_action(status: OrderStatus, action: Action) -> None:
    paid = usd(0) if status == OrderStatus.PLACED else usd(1000)
    state = OrderState("order-1", status, usd(1000), paid, usd(0))
    repeat = (action == Action.CANCEL and status == OrderStatus.CANCELLED) or (
        action == Action.PAY and paid.amount > 0
    )
    if status in SOURCES[action] or repeat:
        DO[action](state)
        return
    with pytest.raises(IllegalTransition) as refused:
        DO[action](state)
    assert refused.value.detail == f"an order that is {status.value} cannot be {action.value}"


@given(
    paid=st.integers(min_value=0, max_value=10**12),
    steps=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=12),
)
def test_a_line_refunded_in_any_steps_gives_back_exactly_what_it_paid(
    paid: int, steps: list[int]
) -> None:
    quantity = sum(steps)
    refunded = 0
    amounts = []
    for taking in steps:
        amounts.append(domain.line_refund(Money(paid, "JPY"), quantity, refunded, taking).amount)
        refunded += taking

    assert sum(amounts) == paid
    # Each step gives back its units' share, to within one minor unit.
    for taking, amount in zip(steps, amounts, strict=True):
        assert abs(amount - paid * taking / quantity) < 1


def test_a_line_refund_never_takes_more_units_than_are_left() -> None:
    with pytest.raises(ValueError, match="cannot refund"):
        domain.line_refund(Money(300, "USD"), 3, 2, 2)
    with pytest.raises(domain.InvalidRefundLines):
        domain.valid_refund_lines([("MUG", 1), ("MUG", 2)])
    with pytest.raises(domain.InvalidRefundLines):
        domain.valid_refund_lines([("MUG", True)])  # type: ignore[list-item]
    assert domain.valid_refund_lines([("MUG", 2), ("CUP", 1)]) == {"MUG": 2, "CUP": 1}
