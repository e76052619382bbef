"""Cart rules: which lines a cart may hold, how a line grows, when a cart is idle.

Pure functions over immutable lines; the service reads and writes the rows around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from colonnade.kernel.errors import Conflict, InvalidInput, NotFound

MAX_SKU_LENGTH = 100
MAX_CUSTOMER_ID_LENGTH = 64


class CartStatus(StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Limits:
    max_quantity: int = 99
    max_lines: int = 100

    def __post_init__(self) -> None:
        if not _is_int(self.max_quantity) or self.max_quantity < 1:
            raise ValueError(f"max_quantity must be a positive integer, got {self.max_quantity!r}")
        if not _is_int(self.max_lines) or self.max_lines < 1:
            raise ValueError(f"max_lines must be a positive integer, got {self.max_lines!r}")


Lines = tuple[Line, ...]


# --- errors -------------------------------------------------------------------------------


class CartNotFound(NotFound):
    code = "cart_not_found"

    def __init__(self, cart_id: str) -> None:
        # Expired carts answer the same as unknown ones: to the shopper both are gone.
        super().__init__(f"no open cart has the id '{cart_id}'", cart_id=cart_id)


class CartClosed(Conflict):
    code = "cart_closed"
    title = "Cart closed"

    def __init__(self, cart_id: str) -> None:
        super().__init__(
            f"cart '{cart_id}' is checked out; its lines can no longer change", cart_id=cart_id
        )


class CartChanged(Conflict):
    code = "cart_changed"
    title = "Cart changed"

    def __init__(self, cart_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"cart '{cart_id}' is at version {actual}, not {expected}: it changed meanwhile",
            cart_id=cart_id,
            expected_version=expected,
            version=actual,
        )


class LineNotFound(NotFound):
    code = "line_not_found"

    def __init__(self, cart_id: str, sku: str) -> None:
        super().__init__(f"cart '{cart_id}' has no line for SKU '{sku}'", cart_id=cart_id, sku=sku)


class UnknownSku(InvalidInput):
    code = "unknown_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"no product variant has the SKU '{sku}'", sku=sku)


class InvalidSku(InvalidInput):
    code = "invalid_sku"


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"


class CartFull(InvalidInput):
    code = "cart_full"

    def __init__(self, max_lines: int) -> None:
        super().__init__(
            f"a cart holds at most {max_lines} different SKUs; remove one to add another",
            max_lines=max_lines,
        )


class InvalidCustomer(InvalidInput):
    code = "invalid_customer"


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


def valid_quantity(quantity: int, limits: Limits, *, allow_zero: bool = False) -> int:
    lowest = 0 if allow_zero else 1
    if not _is_int(quantity) or not lowest <= quantity <= limits.max_quantity:
        raise InvalidQuantity(
            f"quantity must be a whole number from {lowest} to {limits.max_quantity}, "
            f"got {quantity!r}",
            quantity=quantity if _is_int(quantity) else repr(quantity),
            max_quantity=limits.max_quantity,
        )
    return quantity


def valid_customer_id(customer_id: str | None) -> str | None:
    if customer_id is None:
        return None
    if (
        not isinstance(customer_id, str)
        or not customer_id.strip()
        or len(customer_id) > MAX_CUSTOMER_ID_LENGTH
    ):
        raise InvalidCustomer(
            f"a customer id is 1 to {MAX_CUSTOMER_ID_LENGTH} characters; got {customer_id!r}"
        )
    return customer_id


# --- status -------------------------------------------------------------------------------


def is_idle(updated_at: datetime, now: datetime, idle_ttl: timedelta) -> bool:
    return now - updated_at > idle_ttl


def effective_status(
    status: CartStatus, updated_at: datetime, now: datetime, idle_ttl: timedelta
) -> CartStatus:
    """An open cart left alone past its time is expired, whether or not the sweep ran yet."""
    if status is CartStatus.OPEN and is_idle(updated_at, now, idle_ttl):
        return CartStatus.EXPIRED
    return status


def ensure_open(cart_id: str, status: CartStatus) -> None:
    if status is CartStatus.EXPIRED:
        raise CartNotFound(cart_id)
    if status is CartStatus.CHECKED_OUT:
        raise CartClosed(cart_id)


def ensure_visible(cart_id: str, status: CartStatus) -> None:
    """A checked-out cart can still be looked at; an expired one is gone."""
    if status is CartStatus.EXPIRED:
        raise CartNotFound(cart_id)


def ensure_reachable(cart_id: str, owner: str | None, customer_id: str | None) -> None:
    """A guest cart is anyone's who has its id; a customer's cart is theirs alone, and to
    anyone else it looks exactly like a cart that does not exist."""
    if owner is not None and owner != customer_id:
        raise CartNotFound(cart_id)


# --- lines --------------------------------------------------------------------------------


def with_added(lines: Lines, sku: str, quantity: int, limits: Limits) -> Lines:
    """The lines with `quantity` more of `sku`: an existing line grows, a new one goes last."""
    valid_quantity(quantity, limits)
    for index, line in enumerate(lines):
        if line.sku == sku:
            total = line.quantity + quantity
            if total > limits.max_quantity:
                raise InvalidQuantity(
                    f"the cart already holds {line.quantity} of '{sku}'; adding {quantity} "
                    f"would make {total}, more than the {limits.max_quantity} allowed per line",
                    sku=sku,
                    quantity=quantity,
                    in_cart=line.quantity,
                    max_quantity=limits.max_quantity,
                )
            return (*lines[:index], Line(sku, total), *lines[index + 1 :])
    if len(lines) >= limits.max_lines:
        raise CartFull(limits.max_lines)
    return (*lines, Line(sku, quantity))


def with_quantity(cart_id: str, lines: Lines, sku: str, quantity: int, limits: Limits) -> Lines:
    """The lines with `sku` set to exactly `quantity`; 0 removes the line."""
    valid_quantity(quantity, limits, allow_zero=True)
    if quantity == 0:
        return without(cart_id, lines, sku)
    for index, line in enumerate(lines):
        if line.sku == sku:
            return (*lines[:index], Line(sku, quantity), *lines[index + 1 :])
    raise LineNotFound(cart_id, sku)


def without(cart_id: str, lines: Lines, sku: str) -> Lines:
    kept = tuple(line for line in lines if line.sku != sku)
    if len(kept) == len(lines):
        raise LineNotFound(cart_id, sku)
    return kept


def changes(before: Lines, after: Lines) -> tuple[Lines, tuple[str, ...]]:
    """What to write to get from `before` to `after`: lines to upsert and SKUs to delete."""
    old = {line.sku: line.quantity for line in before}
    kept = {line.sku for line in after}
    upserts = tuple(line for line in after if old.get(line.sku) != line.quantity)
    deletes = tuple(line.sku for line in before if line.sku not in kept)
    return upserts, deletes
