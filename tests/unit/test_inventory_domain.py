"""Inventory's pure rules: allocation across warehouses, validation, reservation states."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colonnade.modules.inventory.domain import (
    InvalidQuantity,
    InvalidReservation,
    InvalidSku,
    InvalidWarehouse,
    OutOfStock,
    ReservationNotHeld,
    ReservationStatus,
    StockBelowCommitments,
    allocate,
    available,
    check_on_hand,
    requested_quantities,
    should_commit,
    should_release,
    valid_on_hand,
    valid_ttl,
    valid_warehouse_code,
)

warehouse_stock = st.dictionaries(
    st.sampled_from(["main", "north", "south", "east"]), st.integers(0, 50), max_size=4
)


def test_available_is_on_hand_less_reserved_and_sold() -> None:
    assert available(on_hand=10, reserved=3, sold=2) == 5


def test_a_single_warehouse_serves_a_line_whole() -> None:
    assert allocate("MUG", 3, {"main": 10}) == [("main", 3)]


def test_the_fullest_warehouse_serves_first_and_the_rest_comes_from_the_next() -> None:
    assert allocate("MUG", 12, {"north": 4, "main": 10}) == [("main", 10), ("north", 2)]


def test_a_shortfall_names_the_sku_the_request_and_what_there_is() -> None:
    with pytest.raises(OutOfStock) as raised:
        allocate("MUG", 5, {"main": 3, "north": 1})
    error = raised.value
    assert (error.sku, error.requested, error.available) == ("MUG", 5, 4)
    assert error.status == 409
    assert error.problem()["code"] == "out_of_stock"
    assert "MUG" in error.detail
    assert error.extensions == {"sku": "MUG", "requested": 5, "available": 4}


def test_a_sku_with_no_stock_anywhere_is_out_of_stock() -> None:
    with pytest.raises(OutOfStock):
        allocate("MUG", 1, {})


@given(stock=warehouse_stock, quantity=st.integers(1, 120))
def test_allocation_serves_exactly_the_request_and_never_more_than_a_warehouse_has(
    stock: dict[str, int], quantity: int
) -> None:
    if sum(stock.values()) < quantity:
        with pytest.raises(OutOfStock):
            allocate("SKU", quantity, stock)
        return
    pieces = allocate("SKU", quantity, stock)
    assert sum(q for _, q in pieces) == quantity
    assert all(0 < q <= stock[w] for w, q in pieces)
    assert len({w for w, _ in pieces}) == len(pieces)


def test_lines_for_the_same_sku_are_one_request_in_sku_order() -> None:
    wanted = requested_quantities("cart-1", [("TEE", 1), ("MUG", 2), ("TEE", 3)])
    assert list(wanted.items()) == [("MUG", 2), ("TEE", 4)]


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "2"])
def test_a_line_needs_a_positive_integer_quantity(quantity: object) -> None:
    with pytest.raises(InvalidQuantity) as raised:
        requested_quantities("cart-1", [("MUG", quantity)])  # type: ignore[list-item]
    assert raised.value.status == 422


def test_a_reservation_needs_lines_and_a_reference() -> None:
    with pytest.raises(InvalidReservation):
        requested_quantities("cart-1", [])
    with pytest.raises(InvalidReservation):
        requested_quantities("", [("MUG", 1)])


def test_a_blank_sku_is_refused() -> None:
    with pytest.raises(InvalidSku):
        requested_quantities("cart-1", [("  ", 1)])


@pytest.mark.parametrize("on_hand", [-1, True, 1.5, "10"])
def test_on_hand_is_a_non_negative_integer(on_hand: object) -> None:
    with pytest.raises(InvalidQuantity):
        valid_on_hand(on_hand)  # type: ignore[arg-type]
    assert valid_on_hand(0) == 0


def test_on_hand_cannot_fall_below_what_is_reserved_and_sold() -> None:
    check_on_hand("MUG", "main", 5, reserved=3, sold=2)
    with pytest.raises(StockBelowCommitments) as raised:
        check_on_hand("MUG", "main", 4, reserved=3, sold=2)
    assert raised.value.status == 409
    assert raised.value.code == "stock_below_commitments"


def test_a_reservation_lives_a_positive_time() -> None:
    assert valid_ttl(timedelta(minutes=1)) == timedelta(minutes=1)
    with pytest.raises(InvalidReservation):
        valid_ttl(timedelta(0))


@pytest.mark.parametrize("code", ["", "has space", "-lead", "x" * 41])
def test_warehouse_codes_are_short_plain_words(code: str) -> None:
    with pytest.raises(InvalidWarehouse):
        valid_warehouse_code(code)


def test_committing_is_idempotent_but_not_after_release_or_expiry() -> None:
    assert should_commit("r1", ReservationStatus.HELD) is True
    assert should_commit("r1", ReservationStatus.COMMITTED) is False
    for status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        with pytest.raises(ReservationNotHeld) as raised:
            should_commit("r1", status)
        assert raised.value.status == 409


def test_releasing_is_idempotent_but_not_after_commit() -> None:
    assert should_release("r1", ReservationStatus.HELD) is True
    assert should_release("r1", ReservationStatus.RELEASED) is False
    assert should_release("r1", ReservationStatus.EXPIRED) is False
    with pytest.raises(ReservationNotHeld):
        should_release("r1", ReservationStatus.COMMITTED)
