"""Payment rules: what a payment may do next, what a refund may take, how a gift card pays.
Pure types and functions, plus the provider port; the service and the adapters do the I/O.

Card numbers never enter Colonnade: a card arrives as a provider token (`tok_...`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from colonnade.kernel.errors import ColonnadeError, Conflict, InvalidInput, NotFound
from colonnade.kernel.money import Money

# Far above any basket; keeps every amount inside a 64-bit column.
MAX_AMOUNT = 10**15
MAX_REFERENCE_LENGTH = 200
_TOKEN = re.compile(r"tok_[A-Za-z0-9_]{1,64}")
_GIFT_CARD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
_GIFT_CARD_GROUPS = 4


class PaymentMethod(StrEnum):
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    GIFT_CARD = "gift_card"


class PaymentStatus(StrEnum):
    AUTHORIZING = "authorizing"  # the provider has been asked and has not answered yet
    PENDING = "pending"  # a bank transfer the customer still has to make
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REFUNDED = "refunded"  # captured, and all of it given back
    VOIDED = "voided"
    FAILED = "failed"  # declined
    UNKNOWN = "unknown"  # the provider did not answer; reconcile voids it


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # amount set aside; the provider has not confirmed yet
    SUCCEEDED = "succeeded"


# --- errors -------------------------------------------------------------------------------


class PaymentDeclined(ColonnadeError):
    status = 402
    title = "Payment declined"
    code = "payment_declined"

    def __init__(self, reason: str, payment_id: str | None = None) -> None:
        super().__init__(
            f"the payment was declined: {reason}", reason=reason, payment_id=payment_id
        )
        self.reason = reason
        self.payment_id = payment_id


class ProviderUnavailable(ColonnadeError):
    """The provider did not answer. Whether it acted is unknown until reconciled."""

    status = 503
    title = "Payment provider unavailable"
    code = "payment_provider_unavailable"

    def __init__(
        self, detail: str = "the payment provider did not answer; try again", **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)


class ProviderCircuitOpen(ProviderUnavailable):
    """The provider failed too often lately, so it was not asked at all: nothing happened
    there. `retry_after` (seconds) says when it will be tried again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "the payment provider is unavailable right now and was not asked, so nothing "
            f"happened there; try again later (in about {retry_after} seconds)",
            retry_after=retry_after,
        )
        self.retry_after = retry_after


class InvalidPayment(InvalidInput):
    code = "invalid_payment"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class UnknownPayment(NotFound):
    code = "unknown_payment"

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"no payment has the id '{payment_id}'", payment_id=payment_id)


class NoPaymentForCheckout(NotFound):
    code = "unknown_payment"

    def __init__(self, checkout_id: str) -> None:
        super().__init__(f"checkout '{checkout_id}' has no payment", checkout_id=checkout_id)


class PaymentStateConflict(Conflict):
    """The payment's status does not allow the action."""

    code = "payment_state_conflict"

    def __init__(self, payment_id: str, status: str, action: str) -> None:
        super().__init__(
            f"payment '{payment_id}' is {status} and cannot be {action}",
            payment_id=payment_id,
            payment_status=status,
        )


class CheckoutAlreadyPaid(Conflict):
    code = "checkout_already_paid"

    def __init__(self, checkout_id: str) -> None:
        super().__init__(
            f"checkout '{checkout_id}' already has a payment with another amount or method",
            checkout_id=checkout_id,
        )


class RefundExceedsCapture(Conflict):
    code = "refund_exceeds_capture"

    def __init__(self, payment_id: str, requested: Money, refundable: Money) -> None:
        super().__init__(
            f"payment '{payment_id}' has {refundable.amount} {refundable.currency} left to "
            f"refund, {requested.amount} requested",
            payment_id=payment_id,
            requested=requested.as_dict(),
            refundable=refundable.as_dict(),
        )


class RefundKeyReused(Conflict):
    code = "refund_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"refund key '{key}' was used for another payment or amount", key=key)


class TransferAmountMismatch(Conflict):
    code = "transfer_amount_mismatch"

    def __init__(self, expected: Money, received: Money) -> None:
        super().__init__(
            f"the transfer expects {expected.amount} {expected.currency}, "
            f"{received.amount} {received.currency} confirmed",
            expected=expected.as_dict(),
            received=received.as_dict(),
        )


class ProviderRefused(Conflict):
    """The provider said no to a capture, void or refund (for instance: already captured)."""

    code = "payment_provider_refused"

    def __init__(self, payment_id: str, action: str, reason: str | None) -> None:
        super().__init__(
            f"the payment provider refused to {action} payment '{payment_id}': {reason}",
            payment_id=payment_id,
            reason=reason,
        )


class UnknownGiftCard(NotFound):
    code = "unknown_gift_card"

    def __init__(self) -> None:
        super().__init__("no gift card has that code")


class OrderAlreadyAttached(Conflict):
    code = "order_already_attached"

    def __init__(self, payment_id: str, order_id: str) -> None:
        super().__init__(
            f"payment '{payment_id}' already belongs to order '{order_id}'",
            payment_id=payment_id,
            order_id=order_id,
        )


# --- the provider port --------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderOutcome:
    """What a provider answered. A decline carries its reason; an approval its reference."""

    approved: bool
    reference: str | None = None
    decline_reason: str | None = None

    @classmethod
    def approve(cls, reference: str) -> ProviderOutcome:
        return cls(approved=True, reference=reference)

    @classmethod
    def decline(cls, reason: str, reference: str | None = None) -> ProviderOutcome:
        return cls(approved=False, reference=reference, decline_reason=reason)


# A void's decline when the money was captured already (a charge whose answer was lost).
CHARGE_CAPTURED = "charge_captured"


class PaymentProvider(Protocol):
    """A card processor. Every call carries an idempotency key: a repeated key gets the
    first outcome back and acts no second time. ProviderUnavailable means "no answer".

    `void` accepts the reference an authorization (or a charge) returned or, when that
    answer never arrived, its own idempotency key, so an unknown outcome can be undone. A
    void of money already captured is declined with CHARGE_CAPTURED and the charge's
    reference: that money comes back by a refund.

    `charge` authorizes and captures in one call, as card processors offer for goods that
    ship at once.
    """

    async def authorize(self, key: str, amount: Money, token: str) -> ProviderOutcome: ...

    async def charge(self, key: str, amount: Money, token: str) -> ProviderOutcome: ...

    async def capture(self, key: str, reference: str, amount: Money) -> ProviderOutcome: ...

    async def void(self, key: str, reference: str) -> ProviderOutcome: ...

    async def refund(self, key: str, reference: str, amount: Money) -> ProviderOutcome: ...


# --- rules --------------------------------------------------------------------------------


def valid_amount(amount: Money, what: str = "amount") -> Money:
    if not 0 < amount.amount <= MAX_AMOUNT:
        raise InvalidAmount(
            f"the {what} must be from 1 to {MAX_AMOUNT} minor units, got {amount.amount}",
            amount=amount.amount,
        )
    return amount


def valid_reference(value: str, what: str) -> str:
    """A checkout id, order id or idempotency key: 1 to 200 printable characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REFERENCE_LENGTH:
        raise InvalidPayment(
            f"the {what} must be 1 to {MAX_REFERENCE_LENGTH} characters", field=what
        )
    if not value.isprintable():
        raise InvalidPayment(f"the {what} must be printable text", field=what)
    return value


def valid_token(token: str | None) -> str:
    if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
        raise InvalidPayment(
            "a card payment needs a provider token matching ^tok_[A-Za-z0-9_]{1,64}$; "
            "card numbers are never accepted",
            field="token",
        )
    return token


def payment_method(method: str) -> PaymentMethod:
    try:
        return PaymentMethod(method)
    except ValueError:
        known = ", ".join(m.value for m in PaymentMethod)
        raise InvalidPayment(
            f"'{method}' is not a payment method (one of: {known})", field="method"
        ) from None


def checked_instrument(
    method: PaymentMethod, token: str | None, gift_card_code: str | None
) -> tuple[str | None, str | None]:
    """The token or gift-card code the method needs, and nothing it does not."""
    if method is PaymentMethod.CARD:
        if gift_card_code is not None:
            raise InvalidPayment("a card payment takes a token, not a gift card code")
        return valid_token(token), None
    if method is PaymentMethod.GIFT_CARD:
        if token is not None:
            raise InvalidPayment("a gift card payment takes a gift card code, not a token")
        if not gift_card_code or not gift_card_code.strip():
            raise InvalidPayment("a gift card payment needs the gift card's code")
        return None, gift_card_code
    if token is not None or gift_card_code is not None:
        raise InvalidPayment("a bank transfer takes neither a token nor a gift card code")
    return None, None


# A payment whose money has been taken: capturing again does nothing, refunding may.
CAPTURED_STATUSES = frozenset({PaymentStatus.CAPTURED, PaymentStatus.REFUNDED})


def should_capture(payment_id: str, status: PaymentStatus) -> bool:
    """True when a capture has work to do; False when it already happened; else a conflict."""
    if status in CAPTURED_STATUSES:
        return False
    if status is PaymentStatus.AUTHORIZED:
        return True
    raise PaymentStateConflict(payment_id, status.value, "captured")


def should_void(payment_id: str, status: PaymentStatus) -> bool:
    """True when a void has work to do; False when there is nothing left to void."""
    if status in (PaymentStatus.VOIDED, PaymentStatus.FAILED):
        return False
    # An authorization still in flight may be voided too: the provider is told to void under
    # the authorization's own key, which also stops a late answer from charging anyone.
    if status in (
        PaymentStatus.AUTHORIZED,
        PaymentStatus.PENDING,
        PaymentStatus.UNKNOWN,
        PaymentStatus.AUTHORIZING,
    ):
        return True
    raise PaymentStateConflict(payment_id, status.value, "voided")


def check_refundable(
    payment_id: str, status: PaymentStatus, captured: Money, refunded: Money, amount: Money
) -> None:
    if status not in CAPTURED_STATUSES:
        raise PaymentStateConflict(payment_id, status.value, "refunded")
    if amount.currency != captured.currency:
        raise InvalidAmount(
            f"payment '{payment_id}' is in {captured.currency}, not {amount.currency}"
        )
    left = captured - refunded
    if amount.amount > left.amount:
        raise RefundExceedsCapture(payment_id, amount, left)


def status_after_refund(captured: int, refunded: int) -> PaymentStatus:
    return PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.CAPTURED


def gift_card_take(balance: int, amount: int) -> int:
    """A gift card pays what it can: all of `amount`, or its whole balance when that is less.
    The checkout charges the rest to another method (a second payment)."""
    return max(0, min(balance, amount))


def uncovered(
    method: PaymentMethod, status: PaymentStatus, amount: Money, authorized: Money
) -> Money:
    """What a gift card payment left for the checkout to charge elsewhere; zero otherwise."""
    if method is PaymentMethod.GIFT_CARD and status in (
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURED,
        PaymentStatus.REFUNDED,
    ):
        return amount - authorized
    return Money.zero(amount.currency)


def new_gift_card_code() -> str:
    """GC-XXXX-XXXX-XXXX-XXXX: 80 random bits, shown once and stored only as a hash."""
    groups = [
        "".join(secrets.choice(_GIFT_CARD_ALPHABET) for _ in range(4))
        for _ in range(_GIFT_CARD_GROUPS)
    ]
    return "GC-" + "-".join(groups)


def gift_card_hash(code: str) -> str:
    """The stored form of a code; spaces, dashes and letter case do not matter."""
    normalized = re.sub(r"[\s-]", "", code).upper()
    # Only a code of full length carries the prefix: a code typed without it may itself
    # begin with the letters G and C.
    if len(normalized) == 2 + 4 * _GIFT_CARD_GROUPS and normalized.startswith("GC"):
        normalized = normalized[2:]
    return hashlib.sha256(normalized.encode()).hexdigest()


def new_transfer_reference() -> str:
    """What the customer writes on the bank transfer so staff can match it."""
    return "CLN-" + "".join(secrets.choice(_GIFT_CARD_ALPHABET) for _ in range(10))
