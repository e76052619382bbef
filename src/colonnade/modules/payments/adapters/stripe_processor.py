"""Stripe as Colonnade's card processor, through Stripe's official SDK (`stripe`).

An authorization is a PaymentIntent confirmed at once with `capture_method=manual`; capture,
void and refund are the PaymentIntent's capture and cancel and a Refund. Every call carries
the port's idempotency key as Stripe's Idempotency-Key, so a repeated call gets Stripe's first
answer back (Stripe keeps keys for at least 24 hours).

Outcomes: a card error is a decline with Stripe's decline code; no answer (network, timeout,
rate limit, 5xx, a concurrent request under the same key) is ProviderUnavailable; a request
Stripe rejects as malformed, or a bad API key, is StripeRejected: a fault of ours, not the
customer's. Capture, void and refund refused because of the intent's state are declines, which
the service reports as ProviderRefused.

Amounts: Colonnade counts minor units by ISO 4217 (CLDR); Stripe has its own table, which
mostly agrees (JPY whole yen, USD cents, KWD fils) but not always (HUF and ISK are sent with
two decimals), so amounts are rescaled from one table to the other.
"""

from __future__ import annotations

from typing import Any, cast

import stripe

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.money import Money, exponent
from colonnade.modules.payments.domain import CHARGE_CAPTURED, ProviderOutcome, ProviderUnavailable

# https://docs.stripe.com/currencies: zero-decimal and three-decimal currencies; every other
# currency, including the special cases ISK, HUF and TWD, is sent with two decimals.
_STRIPE_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_STRIPE_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

# Why a capture, void or refund can be refused for the intent's state rather than our request.
_STATE_REFUSALS = frozenset(
    {
        "payment_intent_unexpected_state",
        "charge_already_captured",
        "charge_already_refunded",
        "charge_disputed",
        "charge_expired_for_capture",
        "amount_too_large",
    }
)
_CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
# Metadata on every PaymentIntent: the authorization's key, so it can be found and voided
# when its answer never arrived.
_KEY_METADATA = "colonnade_payment_key"


class StripeRejected(ColonnadeError):
    """Stripe refused the request itself (bad key, bad parameters): a fault of ours."""

    status = 502
    title = "Payment provider rejected the request"
    code = "payment_provider_rejected"

    def __init__(self, detail: str, stripe_code: str | None = None) -> None:
        super().__init__(detail, stripe_code=stripe_code)
        self.stripe_code = stripe_code


def stripe_amount(amount: Money) -> int:
    """`amount` in the minor units Stripe expects for its currency."""
    if amount.currency in _STRIPE_ZERO_DECIMAL:
        stripe_places = 0
    elif amount.currency in _STRIPE_THREE_DECIMAL:
        stripe_places = 3
    else:
        stripe_places = 2
    shift = stripe_places - exponent(amount.currency)
    if shift >= 0:
        return amount.amount * int(10**shift)
    whole, rest = divmod(amount.amount, int(10**-shift))
    if rest:
        raise StripeRejected(
            f"{amount.amount} {amount.currency} has more decimals than Stripe accepts"
        )
    return whole


class StripeProcessor:
    """The PaymentProvider port over Stripe's PaymentIntents API."""

    def __init__(
        self,
        api_key: str,
        *,
        http_client: stripe.HTTPClient | None = None,
        timeout_seconds: float = 10,
        max_network_retries: int = 0,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required")
        # Async calls need an async-capable client; HTTPXClient is the SDK's own.
        self._http_client = http_client or stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            http_client=self._http_client,
            max_network_retries=max_network_retries,
        )

    async def close(self) -> None:
        await self._http_client.close_async()  # type: ignore[no-untyped-call]

    async def authorize(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        return await self._confirm(key, amount, token, capture="manual")

    async def charge(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        return await self._confirm(key, amount, token, capture="automatic")

    async def _confirm(self, key: str, amount: Money, token: str, capture: str) -> ProviderOutcome:
        """A PaymentIntent confirmed at once: held for a later capture ("manual"), or
        captured in the same call ("automatic")."""
        params: dict[str, Any] = {
            "amount": stripe_amount(amount),
            "currency": amount.currency.lower(),
            "capture_method": capture,
            "confirm": True,
            # Cards only: no redirect-based method could need a return_url.
            "payment_method_types": ["card"],
            "metadata": {_KEY_METADATA: key},
        }
        if token.startswith("pm_"):
            params["payment_method"] = token
        else:
            # A legacy card token becomes a PaymentMethod the way Stripe documents it:
            # payment_method_data[card][token]. The SDK's typed params omit `card` here.
            params["payment_method_data"] = {"type": "card", "card": {"token": token}}
        try:
            intent = await self._client.v1.payment_intents.create_async(
                cast("stripe.params.PaymentIntentCreateParams", params),
                {"idempotency_key": key},
            )
        except stripe.StripeError as error:
            return _outcome_of(error, "authorize")
        if intent.status == ("requires_capture" if capture == "manual" else "succeeded"):
            return ProviderOutcome.approve(intent.id)
        if intent.status == "requires_action":
            # 3-D Secure wants the customer; there is no one to ask in a server-side charge.
            return ProviderOutcome.decline("authentication_required", intent.id)
        if intent.status == "requires_payment_method":
            return ProviderOutcome.decline(_last_error_reason(intent), intent.id)
        # "processing" and the like: the outcome is not known yet; reconcile voids it.
        raise ProviderUnavailable(
            f"Stripe left PaymentIntent {intent.id} in status {intent.status}"
        )

    async def capture(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        try:
            intent = await self._client.v1.payment_intents.capture_async(
                reference,
                {"amount_to_capture": stripe_amount(amount)},
                {"idempotency_key": key},
            )
        except stripe.StripeError as error:
            return _outcome_of(error, "capture")
        if intent.status == "succeeded":
            return ProviderOutcome.approve(intent.id)
        return ProviderOutcome.decline(f"payment_intent_{intent.status}", intent.id)

    async def void(self, key: str, reference: str) -> ProviderOutcome:
        if not reference.startswith("pi_"):
            return await self._void_by_authorization_key(key, reference)
        return await self._cancel(key, reference)

    async def refund(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        try:
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": reference, "amount": stripe_amount(amount)},
                {"idempotency_key": key},
            )
        except stripe.StripeError as error:
            return _outcome_of(error, "refund")
        # "pending" is accepted: the money is on its way back and Stripe will not undo it.
        if refund.status in ("succeeded", "pending"):
            return ProviderOutcome.approve(refund.id)
        return ProviderOutcome.decline(refund.failure_reason or f"refund_{refund.status}")

    async def _cancel(self, key: str, intent_id: str) -> ProviderOutcome:
        try:
            intent = await self._client.v1.payment_intents.cancel_async(
                intent_id, options={"idempotency_key": key}
            )
        except stripe.InvalidRequestError as error:
            # Already canceled (for instance by Stripe, seven days after authorizing):
            # what the void wanted is true.
            already = error.error.payment_intent if error.error else None
            if already is not None and already.status == "canceled":
                return ProviderOutcome.approve(already.id)
            if already is not None and already.status == "succeeded":
                return ProviderOutcome.decline(CHARGE_CAPTURED, already.id)
            return _outcome_of(error, "void")
        except stripe.StripeError as error:
            return _outcome_of(error, "void")
        return ProviderOutcome.approve(intent.id)

    async def _void_by_authorization_key(self, key: str, authorize_key: str) -> ProviderOutcome:
        """The authorization's answer never arrived: find its intent by metadata and cancel.

        Stripe's search lags writes by up to a minute; reconcile waits longer than that
        before voiding a stale authorization. When nothing is found the authorization never
        reached Stripe or failed there; no money moves either way, since nothing is captured
        without the intent's id."""
        escaped = authorize_key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = await self._client.v1.payment_intents.search_async(
                {"query": f"metadata['{_KEY_METADATA}']:'{escaped}'", "limit": 10}
            )
        except stripe.StripeError as error:
            return _outcome_of(error, "void")
        for intent in found.data:
            if intent.status in _CANCELABLE:
                return await self._cancel(key, intent.id)
            if intent.status == "succeeded":
                return ProviderOutcome.decline(CHARGE_CAPTURED, intent.id)
        return ProviderOutcome.approve(authorize_key)


def _last_error_reason(intent: stripe.PaymentIntent) -> str:
    last = intent.last_payment_error
    if last is None:
        return "card_declined"
    return last.decline_code or last.code or "card_declined"


def _outcome_of(error: stripe.StripeError, action: str) -> ProviderOutcome:
    """A decline for what the card or the intent's state refused; raises for the rest."""
    if isinstance(error, stripe.CardError):
        details = error.error
        reason = (details.decline_code if details else None) or error.code or "card_declined"
        intent = details.payment_intent if details else None
        return ProviderOutcome.decline(reason, intent.id if intent is not None else None)
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        # APIError also covers 409: another request under this key is still running.
        raise ProviderUnavailable(
            f"Stripe did not answer the {action}: {error.user_message or error}"
        ) from error
    if (
        isinstance(error, stripe.InvalidRequestError)
        and action != "authorize"
        and error.code in _STATE_REFUSALS
    ):
        return ProviderOutcome.decline(error.code)
    raise StripeRejected(
        f"Stripe rejected the {action} ({type(error).__name__}): {error.user_message or error}",
        stripe_code=error.code,
    ) from error
