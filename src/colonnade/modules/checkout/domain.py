"""Checkout rules: the saga's steps, what undoes each, and what makes two requests the same."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput
from colonnade.kernel.money import Money
from colonnade.kernel.shapes import IDEMPOTENCY_KEY

_KEY = re.compile(IDEMPOTENCY_KEY)


class Step(StrEnum):
    """Where a checkout stands. Each step is committed before the next begins."""

    STARTED = "started"
    PLACED = "placed"
    COMPLETED = "completed"
    FAILED = "failed"


FINISHED = frozenset({Step.COMPLETED, Step.FAILED})


class IdempotencyKeyMissing(InvalidInput):
    code = "idempotency_key_required"

    def __init__(self) -> None:
        super().__init__(
            "a checkout needs an Idempotency-Key header (8-200 characters of letters, digits, "
            "'-', '_', ':' or '.'), so a retried request cannot charge twice"
        )


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used for a different checkout request; use a new key"
        )


class CheckoutInProgress(Conflict):
    code = "checkout_in_progress"

    def __init__(self) -> None:
        super().__init__("a checkout with this Idempotency-Key is still running; retry shortly")


class CartEmpty(InvalidInput):
    code = "cart_empty"

    def __init__(self, cart_id: str) -> None:
        super().__init__(f"cart {cart_id} has no lines to check out", cart_id=cart_id)


class NothingToCharge(Conflict):
    code = "nothing_to_charge"

    def __init__(self, cart_id: str, total: Money) -> None:
        super().__init__(
            f"cart {cart_id} costs nothing (0 {total.currency}) at its sale prices and discount; "
            "every order is paid, so remove the promotion code or add to the cart",
            cart_id=cart_id,
        )


class TotalChanged(Conflict):
    code = "total_changed"

    def __init__(self, cart_id: str, expected: Money, total: Money) -> None:
        super().__init__(
            f"cart {cart_id} now costs {total.amount} {total.currency} (in minor units), not "
            f"the {expected.amount} {expected.currency} expected: a sale or promotion started, "
            "ended or ran out since. Nothing was charged; show the cart again and check out "
            "with its new total",
            cart_id=cart_id,
            expected_total={"amount": expected.amount, "currency": expected.currency},
            total={"amount": total.amount, "currency": total.currency},
        )


def checked_key(key: str | None) -> str:
    if key is None or not _KEY.fullmatch(key):
        raise IdempotencyKeyMissing()
    return key


def canonical_request(cart_id: str, request: dict[str, Any]) -> str:
    """The same cart and the same body give the same text, whatever the key order.

    The text holds the buyer's e-mail and address, so it is never stored as it is: the
    checkout keeps only a keyed digest of it (see CheckoutService).
    """
    return json.dumps({"cart": cart_id, "request": request}, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Outcome:
    """What the first request was answered; a retry with the same key is answered the same."""

    status: int
    body: dict[str, Any]


class CartNotOpen(ColonnadeError):
    status = 409
    title = "Cart closed"
    code = "cart_closed"

    def __init__(self, cart_id: str, status: str) -> None:
        super().__init__(f"cart {cart_id} is {status} and cannot be checked out", cart_id=cart_id)


class PaymentRefused(ColonnadeError):
    status = 402
    title = "Payment declined"
    code = "payment_declined"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the payment was declined: {reason}", reason=reason)


class GiftCardShort(ColonnadeError):
    status = 402
    title = "Payment declined"
    code = "payment_declined"

    def __init__(self, remaining: Money) -> None:
        super().__init__(
            f"the gift card does not cover the order; {remaining.amount} {remaining.currency} "
            "remain to be paid: add a card token to the gift card payment to pay the rest",
            reason="insufficient_gift_card_balance",
            remaining=remaining.as_dict(),
        )


class CheckoutInterrupted(ColonnadeError):
    status = 503
    title = "Checkout interrupted"
    code = "checkout_interrupted"

    def __init__(self) -> None:
        super().__init__(
            "the checkout was interrupted and has been undone; nothing was charged. Try again "
            "with a new Idempotency-Key"
        )


class NothingToRefund(Conflict):
    code = "nothing_to_refund"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} has no payment to refund", order_id=order_id)


class InvalidRefund(InvalidInput):
    code = "invalid_refund"

    def __init__(self) -> None:
        super().__init__(
            "a refund gives back either an amount or the units of some lines (lines: "
            "[{sku, quantity}]), and not both"
        )
