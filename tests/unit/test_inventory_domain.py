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
    allocate_in_order,
    available,
    check_on_hand,
    requested_quantities,
    same_allocation,
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


# --- a batch of reservations served from one reading of the stock --------------------------

batch_requests = st.lists(
    st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(1, 8), min_size=1, max_size=3),
    max_size=30,
)
batch_stock = st.dictionaries(st.sampled_from(["A", "B", "C"]), warehouse_stock, max_size=3)


@given(batch_requests, batch_stock)
def test_a_batch_never_takes_more_than_there_is_and_answers_everyone(
    wanted: list[dict[str, int]], stock: dict[str, dict[str, int]]
) -> None:
    served = allocate_in_order(wanted, stock)

    assert len(served) == len(wanted)
    taken: dict[tuple[str, str], int] = {}
    for lines, answer in zip(wanted, served, strict=True):
        if isinstance(answer, OutOfStock):
            assert answer.sku in lines
            continue
        per_sku: dict[str, int] = {}
        for sku, warehouse, quantity in answer:
            assert quantity > 0
            per_sku[sku] = per_sku.get(sku, 0) + quantity
            taken[(sku, warehouse)] = taken.get((sku, warehouse), 0) + quantity
        assert per_sku == lines  # every line whole, or the reservation not at all
    for (sku, warehouse), units in taken.items():
        assert units <= stock[sku][warehouse]


@given(batch_requests, batch_stock)
def test_a_batch_serves_earlier_arrivals_first_as_if_each_came_alone(
    wanted: list[dict[str, int]], stock: dict[str, dict[str, int]]
) -> None:
    left = {sku: dict(by_warehouse) for sku, by_warehouse in stock.items()}
    for lines, answer in zip(wanted, allocate_in_order(wanted, stock), strict=True):
        short = [sku for sku, qty in lines.items() if sum(left.get(sku, {}).values()) < qty]
        if short:
            # Refused exactly when what the earlier ones left falls short, naming that SKU.
            assert isinstance(answer, OutOfStock)
            assert answer.sku == short[0]
            assert answer.available == sum(left.get(answer.sku, {}).values())
            continue
        assert not isinstance(answer, OutOfStock)
        for sku, warehouse, quantity in answer:
            left[sku][warehouse] -= quantity


def test_a_sold_out_buyer_leaves_the_stock_to_those_after_it() -> None:
    served = allocate_in_order([{"A": 2}, {"A": 5}, {"A": 1}], {"A": {"main": 3}})

    assert served[0] == [("A", "main", 2)]
    assert isinstance(served[1], OutOfStock)
    assert (served[1].sku, served[1].available) == ("A", 1)
    assert served[2] == [("A", "main", 1)]


# --- deciding on one reading and checking the decision on another --------------------------


@given(batch_requests, batch_stock)
def test_the_same_reading_makes_the_same_decision(
    wanted: list[dict[str, int]], stock: dict[str, dict[str, int]]
) -> None:
    again = {sku: dict(by_warehouse) for sku, by_warehouse in stock.items()}

    assert same_allocation(allocate_in_order(wanted, stock), allocate_in_order(wanted, again))


@given(batch_requests, batch_stock, st.sampled_from(["A", "B", "C"]), st.integers(1, 50))
def test_stock_come_back_for_a_refused_buyer_changes_the_decision(
    wanted: list[dict[str, int]], stock: dict[str, dict[str, int]], sku: str, more: int
) -> None:
    before = allocate_in_order(wanted, stock)
    grown = {s: dict(by_warehouse) for s, by_warehouse in stock.items()}
    grown.setdefault(sku, {}).setdefault("main", 0)
    grown[sku]["main"] += more

    if any(isinstance(a, OutOfStock) and a.sku == sku for a in before):
        assert not same_allocation(before, allocate_in_order(wanted, grown))


def test_a_refusal_with_a_different_count_left_is_a_different_decision() -> None:
    assert not same_allocation([OutOfStock("A", 2, 1)], [OutOfStock("A", 2, 0)])
    assert not same_allocation([OutOfStock("A", 2, 1)], [[("A", "main", 2)]])
    assert same_allocation([OutOfStock("A", 2, 1), []], [OutOfStock("A", 2, 1), []])
