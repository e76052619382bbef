"""What the shop writes to its customers. Pure: the words of each message, no sending.

A message body names the order, what was bought and what was paid, never who bought it
(no name, no address): the recipient's address is the only personal data a message holds,
and it is kept encrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from colonnade.kernel.money import Money


@dataclass(frozen=True)
class Mail:
    """One e-mail on its way out."""

    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class BoughtLine:
    title: str
    quantity: int
    line_total: Money


@dataclass(frozen=True)
class PaidOrder:
    """An order as its confirmation tells it."""

    number: str
    lines: Sequence[BoughtLine]
    total: Money


def order_confirmation(to: str, order: PaidOrder) -> Mail:
    listed = "\n".join(
        f"  {line.quantity} x {line.title}: {_amount(line.line_total)}" for line in order.lines
    )
    body = (
        f"Thank you for your order {order.number}. Your payment was received.\n\n"
        f"{listed}\n\n"
        f"Total paid: {_amount(order.total)}\n"
    )
    return Mail(to=to, subject=f"Your order {order.number} is confirmed", body=body)


def _amount(money: Money) -> str:
    return f"{money.to_decimal()} {money.currency}"
