"""Order rules: what an order adds up to, and which way its status may move.

Pure: no I/O. An order moves placed -> paid -> fulfilled -> shipped -> delivered; it can be
cancelled before it is fulfilled, and refunded once money came in. A partial refund leaves
the status alone and only grows the refunded amount; refunding everything that was paid
makes the order refunded (a cancelled order stays cancelled while its money goes back).
Paying a paid order or cancelling a cancelled one again changes nothing, so the checkout
can retry its steps and compensations after a crash.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from colonnade.kernel.errors import Conflict, InvalidInput, NotFound
from colonnade.kernel.money import Money, sum_money


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    FULFILLED = "fulfilled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Action(StrEnum):
    """What staff or the checkout do to an order, named by the status it leads to."""

    PAY = "paid"
    FULFIL = "fulfilled"
    SHIP = "shipped"
    DELIVER = "delivered"
    CANCEL = "cancelled"
    REFUND = "refunded"


# From which statuses each action may start.
SOURCES: dict[Action, frozenset[OrderStatus]] = {
    Action.PAY: frozenset({OrderStatus.PLACED}),
    Action.FULFIL: frozenset({OrderStatus.PAID}),
    Action.SHIP: frozenset({OrderStatus.FULFILLED}),
    Action.DELIVER: frozenset({OrderStatus.SHIPPED}),
    Action.CANCEL: frozenset({OrderStatus.PLACED, OrderStatus.PAID}),
    # A cancelled order may still have money to give back; recording that is a refund.
    Action.REFUND: frozenset(
        {
            OrderStatus.PAID,
            OrderStatus.FULFILLED,
            OrderStatus.SHIPPED,
            OrderStatus.DELIVERED,
            OrderStatus.CANCELLED,
        }
    ),
}

# No 0/O, 1/I/L or U, so a number read out over the phone is not misheard.
_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_TEXT = 500
# A carrier's name or a tracking number.
MAX_SHIPPING_TEXT = 100


# --- errors --------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"there is no order {order_id}", order_id=order_id)


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, order_id: str, status: OrderStatus, action: Action) -> None:
        super().__init__(
            f"an order that is {status.value} cannot be {action.value}",
            order_id=order_id,
            # Not "status": that key is the HTTP status in a problem document.
            order_status=status.value,
            action=action.value,
        )
        self.order_status = status
        self.action = action


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"

    def __init__(self, order_id: str, requested: Money, refundable: Money) -> None:
        super().__init__(
            f"a refund of {requested.amount} {requested.currency} minor units exceeds the "
            f"{refundable.amount} {refundable.currency} still refundable on order {order_id}",
            order_id=order_id,
            requested=requested.as_dict(),
            refundable=refundable.as_dict(),
        )


class PaymentMismatch(Conflict):
    code = "payment_mismatch"

    def __init__(self, order_id: str, paid: Money, total: Money) -> None:
        super().__init__(
            f"a payment of {paid.amount} {paid.currency} minor units does not settle order "
            f"{order_id}, whose total is {total.amount} {total.currency}",
            order_id=order_id,
            paid=paid.as_dict(),
            total=total.as_dict(),
        )


class InvalidOrder(InvalidInput):
    code = "invalid_order"

    def __init__(self, detail: str, **extensions: object) -> None:
        super().__init__(detail, **extensions)


class InvalidRefundLines(InvalidInput):
    code = "invalid_refund_lines"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class LineNotOnOrder(InvalidInput):
    code = "line_not_on_order"

    def __init__(self, order_id: str, sku: str) -> None:
        super().__init__(f"order {order_id} has no line of SKU {sku}", order_id=order_id, sku=sku)


class RefundExceedsLine(Conflict):
    code = "refund_exceeds_line"

    def __init__(self, order_id: str, sku: str, asked: int, left: int) -> None:
        super().__init__(
            f"order {order_id}'s line {sku} has {left} units not yet refunded; "
            f"{asked} were asked for",
            order_id=order_id,
            sku=sku,
            asked=asked,
            left=left,
        )


class LineRefundKeyReused(Conflict):
    code = "refund_key_reused"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"this Idempotency-Key already refunded other lines of order {order_id}; "
            "use a new key for a new refund",
            order_id=order_id,
        )


MAX_REFUND_LINES = 200


def valid_refund_lines(wanted: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The units to refund by SKU: at least one line, each SKU once, each quantity >= 1."""
    if not 1 <= len(wanted) <= MAX_REFUND_LINES:
        raise InvalidRefundLines(f"a refund by line names 1 to {MAX_REFUND_LINES} lines")
    found: dict[str, int] = {}
    for sku, quantity in wanted:
        if sku in found:
            raise InvalidRefundLines(f"the SKU {sku} is named twice; name each line once")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidRefundLines(f"the quantity to refund of {sku} is a whole number >= 1")
        found[sku] = quantity
    return found


def line_refund(paid: Money, quantity: int, refunded: int, taking: int) -> Money:
    """What `taking` more units of a line refund, when `refunded` of its `quantity` units are
    refunded already and the line paid `paid` in all (its total after discounts, with its tax
    when tax is added on top). Each refund gives back the units' share of what was paid,
    rounded down, except that the cumulative amount is what gets rounded: refunding every
    unit, in any steps, gives back exactly what the line paid."""
    if refunded < 0 or taking < 1 or refunded + taking > quantity:
        raise ValueError(f"cannot refund {taking} more of {quantity} units ({refunded} done)")
    after = paid.amount * (refunded + taking) // quantity
    before = paid.amount * refunded // quantity
    return Money(after - before, paid.currency)


# --- what an order adds up to --------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Money
    # What the line costs after any discount; in tax-inclusive markets tax is inside it.
    line_total: Money
    tax: Money
    # What promotions took off the line (None: nothing), and which promotions did.
    discount: Money | None = None
    promotions: tuple[str, ...] = ()
    # Units refunded by line (or set aside for a refund under way).
    refunded_quantity: int = 0


@dataclass(frozen=True)
class Totals:
    subtotal: Money
    tax: Money
    shipping: Money
    total: Money


def order_total(subtotal: Money, tax: Money, shipping: Money, tax_inclusive: bool) -> Money:
    """The one rule the database checks too: tax is added only where prices exclude it."""
    return subtotal + shipping if tax_inclusive else subtotal + tax + shipping


def totals(
    lines: Sequence[OrderLine], shipping: Money, tax_inclusive: bool, currency: str
) -> Totals:
    """Sum the lines of a new order; every amount must be in the order's currency."""
    if not lines:
        raise InvalidOrder("an order needs at least one line")
    for position, line in enumerate(lines):
        _check_line(position, line, currency)
    if shipping.currency != currency:
        raise InvalidOrder(
            f"shipping is in {shipping.currency} but the order is in {currency}",
            field="shipping",
        )
    if shipping.amount < 0:
        raise InvalidOrder("shipping cannot be negative", field="shipping")
    for position, line in enumerate(lines):
        if line.discount is not None and line.line_total + line.discount != line.unit_price.times(
            line.quantity
        ):
            raise InvalidOrder(
                f"lines.{position}: the line total and its discount add up to "
                f"{(line.line_total + line.discount).amount}, not unit price times quantity",
                field=f"lines.{position}.discount",
            )
    subtotal = sum_money([line.line_total for line in lines], currency)
    tax = sum_money([line.tax for line in lines], currency)
    return Totals(subtotal, tax, shipping, order_total(subtotal, tax, shipping, tax_inclusive))


def _check_line(position: int, line: OrderLine, currency: str) -> None:
    where = f"lines.{position}"
    if not line.sku.strip() or len(line.sku) > 100:
        raise InvalidOrder(f"{where}: a SKU is 1-100 characters", field=f"{where}.sku")
    if len(line.title) > MAX_TEXT:
        raise InvalidOrder(f"{where}: a title is at most {MAX_TEXT} characters")
    if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity < 1:
        raise InvalidOrder(f"{where}: quantity must be a whole number of at least 1")
    for name, amount in (
        ("unit_price", line.unit_price),
        ("line_total", line.line_total),
        ("tax", line.tax),
        ("discount", line.discount or Money.zero(currency)),
    ):
        if amount.currency != currency:
            raise InvalidOrder(
                f"{where}.{name} is in {amount.currency} but the order is in {currency}",
                field=f"{where}.{name}",
            )
        if amount.amount < 0:
            raise InvalidOrder(f"{where}.{name} cannot be negative", field=f"{where}.{name}")


def new_number() -> str:
    """A short order number for people, such as C-7KQ2XM9P; unique by database constraint."""
    return "C-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


def valid_email(email: str) -> str:
    """The address orders are sent to, trimmed and lower-cased so staff can find it."""
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        # The address is not repeated: a refusal is stored and may be logged.
        raise InvalidOrder("the e-mail address is not valid", field="email")
    return cleaned


def valid_text(name: str, value: str, *, limit: int = MAX_TEXT) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > limit:
        raise InvalidOrder(f"{name} is 1-{limit} characters", field=name)
    return cleaned


# --- where an order stands ----------------------------------------------------------------


@dataclass(frozen=True)
class OrderState:
    """The part of an order its transitions change; the rest never changes once placed."""

    order_id: str
    status: OrderStatus
    total: Money
    paid: Money
    refunded: Money

    @classmethod
    def placed(cls, order_id: str, total: Money) -> OrderState:
        zero = Money.zero(total.currency)
        return cls(order_id, OrderStatus.PLACED, total, zero, zero)

    def allows(self, action: Action) -> bool:
        return self.status in SOURCES[action]

    def _to(self, action: Action) -> OrderState:
        if not self.allows(action):
            raise IllegalTransition(self.order_id, self.status, action)
        return replace(self, status=OrderStatus(action.value))

    def pay(self, amount: Money) -> OrderState:
        """Settle the whole total. Saying so again for the same amount changes nothing."""
        if self.paid.amount > 0 and amount == self.paid:
            return self
        moved = self._to(Action.PAY)
        if amount != self.total:
            raise PaymentMismatch(self.order_id, amount, self.total)
        return replace(moved, paid=amount)

    def fulfil(self) -> OrderState:
        return self._to(Action.FULFIL)

    def ship(self) -> OrderState:
        return self._to(Action.SHIP)

    def deliver(self) -> OrderState:
        return self._to(Action.DELIVER)

    def cancel(self) -> OrderState:
        """Cancelling a cancelled order changes nothing, so a compensation can be retried."""
        if self.status == OrderStatus.CANCELLED:
            return self
        return self._to(Action.CANCEL)

    def refund(self, amount: Money) -> OrderState:
        if not self.allows(Action.REFUND):
            raise IllegalTransition(self.order_id, self.status, Action.REFUND)
        if amount.currency != self.total.currency:
            raise InvalidOrder(
                f"the refund is in {amount.currency} but the order is in {self.total.currency}",
                field="amount",
            )
        if amount.amount <= 0:
            raise InvalidOrder("a refund must be more than nothing", field="amount")
        refundable = self.paid - self.refunded
        if amount.amount > refundable.amount:
            raise RefundExceedsPayment(self.order_id, amount, refundable)
        refunded = self.refunded + amount
        everything = refunded == self.paid and self.status != OrderStatus.CANCELLED
        return replace(
            self, refunded=refunded, status=OrderStatus.REFUNDED if everything else self.status
        )

    @property
    def fully_refunded(self) -> bool:
        return self.paid.amount > 0 and self.refunded == self.paid
