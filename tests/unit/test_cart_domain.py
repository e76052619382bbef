"""Cart's pure rules: lines merge, quantities stay within limits, idle carts expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.modules.cart.domain import (
    CartClosed,
    CartFull,
    CartNotFound,
    CartStatus,
    InvalidCustomer,
    InvalidQuantity,
    InvalidSku,
    Limits,
    Line,
    LineNotFound,
    changes,
    effective_status,
    ensure_open,
    ensure_visible,
    valid_customer_id,
    valid_quantity,
    valid_sku,
    with_added,
    with_quantity,
    without,
)

LIMITS = Limits(max_quantity=99, max_lines=3)
NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_a_new_sku_goes_to_the_end_of_the_cart() -> None:
    lines = (Line("MUG", 1),)

    assert with_added(lines, "TEE", 2, LIMITS) == (Line("MUG", 1), Line("TEE", 2))


def test_adding_a_sku_already_in_the_cart_grows_its_line_in_place() -> None:
    lines = (Line("MUG", 1), Line("TEE", 2))

    assert with_added(lines, "MUG", 3, LIMITS) == (Line("MUG", 4), Line("TEE", 2))


def test_a_line_cannot_grow_past_the_quantity_limit() -> None:
    with pytest.raises(InvalidQuantity, match="would make 100"):
        with_added((Line("MUG", 60),), "MUG", 40, LIMITS)


def test_a_full_cart_takes_no_new_sku_but_its_lines_still_grow() -> None:
    full = (Line("A", 1), Line("B", 1), Line("C", 1))

    with pytest.raises(CartFull):
        with_added(full, "D", 1, LIMITS)
    assert with_added(full, "C", 1, LIMITS)[-1] == Line("C", 2)


@pytest.mark.parametrize("quantity", [0, -1, 100, True, 1.0, "1"])
def test_a_quantity_to_add_is_a_whole_number_from_one_to_the_limit(quantity: object) -> None:
    with pytest.raises(InvalidQuantity):
        with_added((), "MUG", quantity, LIMITS)  # type: ignore[arg-type]


def test_setting_a_quantity_replaces_it_and_zero_removes_the_line() -> None:
    lines = (Line("MUG", 5), Line("TEE", 1))

    assert with_quantity("c1", lines, "MUG", 2, LIMITS) == (Line("MUG", 2), Line("TEE", 1))
    assert with_quantity("c1", lines, "MUG", 0, LIMITS) == (Line("TEE", 1),)
    with pytest.raises(LineNotFound):
        with_quantity("c1", lines, "CAP", 1, LIMITS)
    with pytest.raises(InvalidQuantity):
        with_quantity("c1", lines, "MUG", 100, LIMITS)


def test_removing_a_line_the_cart_does_not_have_is_not_found() -> None:
    assert without("c1", (Line("MUG", 1),), "MUG") == ()
    with pytest.raises(LineNotFound) as missing:
        without("c1", (Line("MUG", 1),), "TEE")
    assert missing.value.extensions == {"cart_id": "c1", "sku": "TEE"}


@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(1, 9)), max_size=30))
def test_adding_lines_one_by_one_sums_each_sku(adds: list[tuple[str, int]]) -> None:
    limits = Limits(max_quantity=1000, max_lines=5)
    lines: tuple[Line, ...] = ()
    for sku, quantity in adds:
        lines = with_added(lines, sku, quantity, limits)

    expected: dict[str, int] = {}
    for sku, quantity in adds:
        expected[sku] = expected.get(sku, 0) + quantity
    assert [(line.sku, line.quantity) for line in lines] == list(expected.items())


@given(
    st.dictionaries(st.sampled_from("ABCDE"), st.integers(1, 9)),
    st.dictionaries(st.sampled_from("ABCDE"), st.integers(1, 9)),
)
def test_changes_turn_one_set_of_lines_into_another(
    before: dict[str, int], after: dict[str, int]
) -> None:
    upserts, deletes = changes(
        tuple(Line(s, q) for s, q in before.items()), tuple(Line(s, q) for s, q in after.items())
    )

    result = {s: q for s, q in before.items() if s not in deletes}
    result.update({line.sku: line.quantity for line in upserts})
    assert result == after
    assert all(before.get(line.sku) != line.quantity for line in upserts)


def test_an_open_cart_left_alone_past_its_idle_time_is_expired() -> None:
    open_ = CartStatus.OPEN
    assert effective_status(open_, NOW - DAY, NOW, DAY) is CartStatus.OPEN
    assert effective_status(open_, NOW - DAY - timedelta(seconds=1), NOW, DAY) is (
        CartStatus.EXPIRED
    )
    # A checked-out cart stays checked out however long ago it was.
    assert effective_status(CartStatus.CHECKED_OUT, NOW - 10 * DAY, NOW, DAY) is (
        CartStatus.CHECKED_OUT
    )


def test_only_an_open_cart_changes_and_an_expired_one_is_gone() -> None:
    ensure_open("c1", CartStatus.OPEN)
    with pytest.raises(CartClosed):
        ensure_open("c1", CartStatus.CHECKED_OUT)
    with pytest.raises(CartNotFound):
        ensure_open("c1", CartStatus.EXPIRED)
    ensure_visible("c1", CartStatus.CHECKED_OUT)
    with pytest.raises(CartNotFound):
        ensure_visible("c1", CartStatus.EXPIRED)


@pytest.mark.parametrize("sku", ["", "   ", "X" * 101])
def test_a_sku_is_one_to_a_hundred_characters(sku: str) -> None:
    with pytest.raises(InvalidSku):
        valid_sku(sku)


def test_validation_accepts_what_it_should() -> None:
    assert valid_sku("MUG-RED") == "MUG-RED"
    assert valid_quantity(99, LIMITS) == 99
    assert valid_quantity(0, LIMITS, allow_zero=True) == 0
    assert valid_customer_id(None) is None
    with pytest.raises(InvalidCustomer):
        valid_customer_id("")


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_lines"):
        Limits(max_quantity=5, max_lines=0)
