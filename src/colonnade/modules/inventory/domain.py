"""Inventory rules: how much can be sold, how a request is served from warehouses, and
what a reservation may do next. Pure functions and types; the service does the I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

from colonnade.kernel.errors import Conflict, InvalidInput, NotFound

MAX_SKU_LENGTH = 100
MAX_REFERENCE_LENGTH = 200
MAX_WAREHOUSE_NAME_LENGTH = 200
WAREHOUSE_CODE_SHAPE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"
_WAREHOUSE_CODE = re.compile(WAREHOUSE_CODE_SHAPE)


class ReservationStatus(StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"
    RETURNED = "returned"  # sold, then given back (a cancelled order)


class LedgerReason(StrEnum):
    SET_ON_HAND = "set_on_hand"
    RESERVE = "reserve"
    COMMIT = "commit"
    RELEASE = "release"
    EXPIRE = "expire"
    RETURN = "return"


# --- errors -------------------------------------------------------------------------------


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "Out of stock"

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(
            f"SKU '{sku}' has {available} available, {requested} requested",
            sku=sku,
            requested=requested,
            available=available,
        )
        self.sku = sku
        self.requested = requested
        self.available = available


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"


class InvalidReservation(InvalidInput):
    code = "invalid_reservation"


class InvalidSku(InvalidInput):
    code = "invalid_sku"


class InvalidWarehouse(InvalidInput):
    code = "invalid_warehouse"


class UnknownSku(NotFound):
    code = "unknown_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"no product variant has the SKU '{sku}'", sku=sku)


class UnknownWarehouse(NotFound):
    code = "unknown_warehouse"

    def __init__(self, code: str) -> None:
        super().__init__(
            f"no warehouse has the code '{code}' (create it with PUT /admin/warehouses/{code})",
            warehouse=code,
        )


class UnknownReservation(NotFound):
    code = "unknown_reservation"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(
            f"no reservation has the id '{reservation_id}'", reservation_id=reservation_id
        )


class StockBelowCommitments(Conflict):
    code = "stock_below_commitments"

    def __init__(self, sku: str, warehouse: str, on_hand: int, reserved: int, sold: int) -> None:
        super().__init__(
            f"on hand for SKU '{sku}' in warehouse '{warehouse}' cannot be {on_hand}: "
            f"{reserved} are reserved and {sold} sold but not yet shipped",
            sku=sku,
            warehouse=warehouse,
            on_hand=on_hand,
            reserved=reserved,
            sold=sold,
        )


class ReservationNotHeld(Conflict):
    code = "reservation_not_held"

    def __init__(self, reservation_id: str, status: ReservationStatus, action: str) -> None:
        super().__init__(
            f"reservation '{reservation_id}' is {status.value}; it cannot be {action}",
            reservation_id=reservation_id,
            status=status.value,
        )


# --- validation ---------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    # bool is an int subclass; True is not a quantity.
    return isinstance(value, int) and not isinstance(value, bool)


def valid_sku(sku: str) -> str:
    if not isinstance(sku, str) or not sku.strip() or len(sku) > MAX_SKU_LENGTH:
        raise InvalidSku(
            f"a SKU must be 1 to {MAX_SKU_LENGTH} characters, not only spaces; got {sku!r}",
            sku=sku,
        )
    return sku


def valid_warehouse_code(code: str) -> str:
    if not isinstance(code, str) or not _WAREHOUSE_CODE.fullmatch(code):
        raise InvalidWarehouse(
            "a warehouse code is 1 to 40 letters, digits, '-' or '_', starting with a letter "
            f"or digit; got {code!r}",
            warehouse=code,
        )
    return code


def valid_warehouse_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_WAREHOUSE_NAME_LENGTH:
        raise InvalidWarehouse(
            f"a warehouse name must be 1 to {MAX_WAREHOUSE_NAME_LENGTH} characters, not only "
            f"spaces; got {name!r}"
        )
    return name.strip()


def valid_on_hand(on_hand: int) -> int:
    if not _is_int(on_hand) or on_hand < 0:
        raise InvalidQuantity(
            f"on_hand must be a non-negative integer, got {on_hand!r}", field="on_hand"
        )
    return on_hand


def valid_ttl(ttl: timedelta) -> timedelta:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise InvalidReservation(f"a reservation must live for a positive time, got {ttl!r}")
    return ttl


def requested_quantities(reference: str, lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The quantity wanted per SKU, in SKU order (the order stock rows are locked in).

    The same SKU on two lines is one request for their sum.
    """
    if not isinstance(reference, str) or not reference or len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidReservation(
            f"a reservation needs a reference of 1 to {MAX_REFERENCE_LENGTH} characters"
        )
    wanted: dict[str, int] = {}
    for sku, quantity in lines:
        valid_sku(sku)
        if not _is_int(quantity) or quantity <= 0:
            raise InvalidQuantity(
                f"the quantity for SKU '{sku}' must be a positive integer, got {quantity!r}",
                sku=sku,
                quantity=quantity,
            )
        wanted[sku] = wanted.get(sku, 0) + quantity
    if not wanted:
        raise InvalidReservation("a reservation needs at least one line")
    return dict(sorted(wanted.items()))


# --- rules --------------------------------------------------------------------------------


def available(on_hand: int, reserved: int, sold: int) -> int:
    return on_hand - reserved - sold


def check_on_hand(sku: str, warehouse: str, on_hand: int, reserved: int, sold: int) -> None:
    """Stock on the shelf can never fall below what is promised to buyers."""
    if on_hand < reserved + sold:
        raise StockBelowCommitments(sku, warehouse, on_hand, reserved, sold)


def allocate(sku: str, quantity: int, by_warehouse: Mapping[str, int]) -> list[tuple[str, int]]:
    """Serve `quantity` from the warehouses' available stock: the fullest first, so a line
    is split over as few warehouses as possible. OutOfStock when all together fall short."""
    total = sum(max(units, 0) for units in by_warehouse.values())
    if total < quantity:
        raise OutOfStock(sku, quantity, total)
    pieces: list[tuple[str, int]] = []
    remaining = quantity
    for warehouse, units in sorted(by_warehouse.items(), key=lambda item: (-item[1], item[0])):
        if remaining == 0:
            break
        take = min(units, remaining)
        if take > 0:
            pieces.append((warehouse, take))
            remaining -= take
    return pieces


def allocate_in_order(
    wanted: Sequence[Mapping[str, int]], available_now: Mapping[str, Mapping[str, int]]
) -> list[list[tuple[str, str, int]] | OutOfStock]:
    """Serve a batch of reservations from one reading of the stock, earliest first.

    Each reservation gets every line or nothing: its (sku, warehouse, quantity) pieces in
    (sku, warehouse) order, or OutOfStock naming its first short SKU with what was left for
    it. What one takes is gone for those after it, so no unit is promised twice and the
    batch as a whole never takes more than `available_now`.
    """
    left = {sku: dict(by_warehouse) for sku, by_warehouse in available_now.items()}
    served: list[list[tuple[str, str, int]] | OutOfStock] = []
    for lines in wanted:
        try:
            plan = {sku: allocate(sku, qty, left.get(sku, {})) for sku, qty in lines.items()}
        except OutOfStock as short:
            served.append(short)
            continue
        pieces = []
        for sku, parts in plan.items():
            for warehouse, quantity in parts:
                left[sku][warehouse] -= quantity
                pieces.append((sku, warehouse, quantity))
        served.append(sorted(pieces))
    return served


def same_allocation(
    one: Sequence[list[tuple[str, str, int]] | OutOfStock],
    other: Sequence[list[tuple[str, str, int]] | OutOfStock],
) -> bool:
    """True when two allocations of the same batch promise the same: the same pieces to each
    reservation, and the same refusal (SKU, units asked, units left) to each refused one."""
    if len(one) != len(other):
        return False
    for a, b in zip(one, other, strict=True):
        if isinstance(a, OutOfStock) or isinstance(b, OutOfStock):
            if not (isinstance(a, OutOfStock) and isinstance(b, OutOfStock)):
                return False
            if (a.sku, a.requested, a.available) != (b.sku, b.requested, b.available):
                return False
        elif a != b:
            return False
    return True


def should_commit(reservation_id: str, status: ReservationStatus) -> bool:
    """True when the reservation must be committed now; False when it already was."""
    if status is ReservationStatus.HELD:
        return True
    if status is ReservationStatus.COMMITTED:
        return False
    raise ReservationNotHeld(reservation_id, status, "committed")


def should_release(reservation_id: str, status: ReservationStatus) -> bool:
    """True when the reservation must be released now; False when its stock is already free."""
    if status is ReservationStatus.HELD:
        return True
    if status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        return False
    raise ReservationNotHeld(reservation_id, status, "released")


def should_return(reservation_id: str, status: ReservationStatus) -> bool:
    """True when sold stock must go back on the shelf now; False when it already went back."""
    if status is ReservationStatus.COMMITTED:
        return True
    if status is ReservationStatus.RETURNED:
        return False
    raise ReservationNotHeld(reservation_id, status, "returned")
