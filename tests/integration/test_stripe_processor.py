"""The Stripe adapter, against Stripe's recorded answers (no network).

Stripe's side is replayed by a subclass of the SDK's own HTTPClient: it answers each request
from a recording in stripe_recordings/ (a status code and a body in the exact shape of Stripe's
API objects) and keeps what it was sent, so the tests can check what Colonnade asked Stripe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from colonnade.kernel.clock import SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.modules.payments.adapters.stripe_processor import StripeProcessor, StripeRejected
from colonnade.modules.payments.domain import ProviderOutcome, ProviderUnavailable
from colonnade.modules.payments.service import PaymentsService, PaymentStatus

RECORDINGS = Path(__file__).parent / "stripe_recordings"
INTENT = "pi_3QxTn2LkdIwHu7ix0Vb7pC1R"
CREATE = ("POST", "/v1/payment_intents")
CAPTURE = ("POST", f"/v1/payment_intents/{INTENT}/capture")
CANCEL = ("POST", f"/v1/payment_intents/{INTENT}/cancel")
SEARCH = ("GET", "/v1/payment_intents/search")
REFUND = ("POST", "/v1/refunds")
NO_ANSWER = "<connection refused>"


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    form: dict[str, str]
    query: dict[str, str]


class ReplayedStripe(stripe.HTTPClient):
    """Answers (method, path) with the named recording, or with no answer at all."""

    name = "replayed-stripe"

    def __init__(self, answers: Mapping[tuple[str, str], str]) -> None:
        super().__init__()
        self._answers = dict(answers)
        self.sent: list[SentRequest] = []

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        parts = urlsplit(url)
        method = method.upper()
        self.sent.append(
            SentRequest(
                method=method,
                path=parts.path,
                headers=dict(headers),
                form=dict(parse_qsl(post_data or "", keep_blank_values=True)),
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            )
        )
        answer = self._answers.get((method, parts.path))
        if answer is None:
            raise AssertionError(f"no recording for {method} {parts.path}")
        if answer == NO_ANSWER:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "Network error: ConnectTimeout", should_retry=True
            )
        recording = json.loads((RECORDINGS / f"{answer}.json").read_text())
        return json.dumps(recording["body"]).encode(), recording["status"], recording["headers"]

    async def sleep_async(self, secs: float) -> None:
        return None

    async def close_async(self) -> None:
        return None

    def only(self) -> SentRequest:
        assert len(self.sent) == 1, self.sent
        return self.sent[0]


def processor(answers: Mapping[tuple[str, str], str]) -> tuple[StripeProcessor, ReplayedStripe]:
    stripe_side = ReplayedStripe(answers)
    return StripeProcessor("sk_test_colonnade", http_client=stripe_side), stripe_side


def usd(amount: int) -> Money:
    return Money(amount, "USD")


# --- authorize ----------------------------------------------------------------------------


async def test_an_approved_card_is_authorized_under_the_payment_intents_id() -> None:
    stripe_processor, stripe_side = processor({CREATE: "payment_intent_requires_capture"})

    outcome = await stripe_processor.authorize("pay-0001", usd(2500), "tok_visa")

    assert outcome == ProviderOutcome.approve(INTENT)
    sent = stripe_side.only()
    assert (sent.method, sent.path) == CREATE
    assert sent.form["amount"] == "2500"
    assert sent.form["currency"] == "usd"
    assert sent.form["capture_method"] == "manual"
    assert sent.form["confirm"] == "true"
    assert sent.form["payment_method_data[type]"] == "card"
    assert sent.form["payment_method_data[card][token]"] == "tok_visa"
    assert sent.form["metadata[colonnade_payment_key]"] == "pay-0001"
    assert sent.headers["Idempotency-Key"] == "pay-0001"
    assert sent.headers["Authorization"] == "Bearer sk_test_colonnade"


async def test_a_payment_method_id_is_sent_as_the_payment_method() -> None:
    stripe_processor, stripe_side = processor({CREATE: "payment_intent_requires_capture"})

    await stripe_processor.authorize("pay-0002", usd(2500), "pm_card_visa")

    assert stripe_side.only().form["payment_method"] == "pm_card_visa"
    assert "payment_method_data[type]" not in stripe_side.only().form


async def test_a_card_without_funds_is_declined_with_stripes_decline_code() -> None:
    stripe_processor, _ = processor({CREATE: "error_card_declined_insufficient_funds"})

    outcome = await stripe_processor.authorize(
        "pay-0003", usd(2500), "tok_chargeDeclinedInsufficientFunds"
    )

    assert not outcome.approved
    assert outcome.decline_reason == "insufficient_funds"
    assert outcome.reference == "pi_3QxTp4LkdIwHu7ix0Zr8mE2T"


async def test_no_answer_from_stripe_is_provider_unavailable() -> None:
    stripe_processor, _ = processor({CREATE: NO_ANSWER})

    with pytest.raises(ProviderUnavailable, match="did not answer the authorize"):
        await stripe_processor.authorize("pay-0004", usd(2500), "tok_visa")


async def test_a_stripe_server_error_is_provider_unavailable() -> None:
    stripe_processor, _ = processor({CREATE: "error_api_500"})

    with pytest.raises(ProviderUnavailable):
        await stripe_processor.authorize("pay-0005", usd(2500), "tok_visa")


async def test_a_wrong_api_key_is_an_error_of_ours_not_a_decline() -> None:
    stripe_processor, _ = processor({CREATE: "error_invalid_api_key"})

    with pytest.raises(StripeRejected, match="AuthenticationError") as rejected:
        await stripe_processor.authorize("pay-0006", usd(2500), "tok_visa")
    assert rejected.value.status == 502


async def test_a_request_stripe_finds_invalid_is_an_error_not_a_decline() -> None:
    stripe_processor, _ = processor({CREATE: "error_missing_payment_method"})

    with pytest.raises(StripeRejected, match="No such token") as rejected:
        await stripe_processor.authorize("pay-0007", usd(2500), "tok_doesNotExist")
    assert rejected.value.stripe_code == "resource_missing"


async def test_yen_are_sent_as_whole_yen() -> None:
    stripe_processor, stripe_side = processor({CREATE: "payment_intent_requires_capture_jpy"})

    outcome = await stripe_processor.authorize("pay-0008", Money(5000, "JPY"), "tok_visa")

    assert outcome.approved
    assert stripe_side.only().form["amount"] == "5000"
    assert stripe_side.only().form["currency"] == "jpy"


async def test_forints_are_sent_with_the_two_decimals_stripe_expects() -> None:
    # CLDR gives HUF no minor units; Stripe counts HUF in fillér.
    stripe_processor, stripe_side = processor({CREATE: "payment_intent_requires_capture"})

    await stripe_processor.authorize("pay-0009", Money(1500, "HUF"), "tok_visa")

    assert stripe_side.only().form["amount"] == "150000"
    assert stripe_side.only().form["currency"] == "huf"


# --- capture, void, refund ----------------------------------------------------------------


async def test_capture_sends_the_amount_to_capture_under_the_ports_key() -> None:
    stripe_processor, stripe_side = processor({CAPTURE: "payment_intent_succeeded"})

    outcome = await stripe_processor.capture("pay-0001:capture", INTENT, usd(2500))

    assert outcome == ProviderOutcome.approve(INTENT)
    sent = stripe_side.only()
    assert sent.form == {"amount_to_capture": "2500"}
    assert sent.headers["Idempotency-Key"] == "pay-0001:capture"


async def test_capturing_a_captured_intent_is_refused_not_an_error() -> None:
    stripe_processor, _ = processor({CAPTURE: "error_capture_already_succeeded"})

    outcome = await stripe_processor.capture("pay-0001:capture", INTENT, usd(2500))

    assert outcome == ProviderOutcome.decline("payment_intent_unexpected_state")


async def test_void_cancels_the_payment_intent() -> None:
    stripe_processor, stripe_side = processor({CANCEL: "payment_intent_canceled"})

    outcome = await stripe_processor.void("pay-0001:void", INTENT)

    assert outcome == ProviderOutcome.approve(INTENT)
    sent = stripe_side.only()
    assert (sent.method, sent.path) == CANCEL
    assert sent.headers["Idempotency-Key"] == "pay-0001:void"


async def test_voiding_an_intent_stripe_already_canceled_succeeds() -> None:
    stripe_processor, _ = processor({CANCEL: "error_cancel_already_canceled"})

    outcome = await stripe_processor.void("pay-0001:void", INTENT)

    assert outcome == ProviderOutcome.approve(INTENT)


async def test_void_by_the_authorizations_key_finds_the_intent_and_cancels_it() -> None:
    stripe_processor, stripe_side = processor(
        {SEARCH: "search_payment_intents_by_key", CANCEL: "payment_intent_canceled"}
    )

    outcome = await stripe_processor.void("pay-0001:void", "pay-0001")

    assert outcome == ProviderOutcome.approve(INTENT)
    search, cancel = stripe_side.sent
    assert search.query["query"] == "metadata['colonnade_payment_key']:'pay-0001'"
    assert cancel.headers["Idempotency-Key"] == "pay-0001:void"


async def test_void_by_a_key_stripe_never_saw_has_nothing_to_cancel() -> None:
    stripe_processor, stripe_side = processor({SEARCH: "search_payment_intents_empty"})

    outcome = await stripe_processor.void("pay-0010:void", "pay-0010")

    assert outcome == ProviderOutcome.approve("pay-0010")
    assert [sent.path for sent in stripe_side.sent] == [SEARCH[1]]


async def test_refund_sends_the_amount_for_the_payment_intent() -> None:
    stripe_processor, stripe_side = processor({REFUND: "refund_succeeded"})

    outcome = await stripe_processor.refund("refund:r-1", INTENT, usd(1000))

    assert outcome == ProviderOutcome.approve("re_3QxTn2LkdIwHu7ix0eL4vB8s")
    sent = stripe_side.only()
    assert sent.form == {"payment_intent": INTENT, "amount": "1000"}
    assert sent.headers["Idempotency-Key"] == "refund:r-1"


async def test_a_refund_stripe_does_not_answer_is_provider_unavailable() -> None:
    stripe_processor, _ = processor({REFUND: NO_ANSWER})

    with pytest.raises(ProviderUnavailable):
        await stripe_processor.refund("refund:r-2", INTENT, usd(1000))


async def test_every_idempotency_key_reaches_stripe_unchanged() -> None:
    stripe_processor, stripe_side = processor(
        {
            CREATE: "payment_intent_requires_capture",
            CAPTURE: "payment_intent_succeeded",
            REFUND: "refund_succeeded",
            CANCEL: "payment_intent_canceled",
        }
    )
    keys = ["0199a1b2-7c3d-7e4f", "0199a1b2-7c3d-7e4f:capture", "refund:Küche #4", "k:void"]

    await stripe_processor.authorize(keys[0], usd(2500), "tok_visa")
    await stripe_processor.capture(keys[1], INTENT, usd(2500))
    await stripe_processor.refund(keys[2], INTENT, usd(1000))
    await stripe_processor.void(keys[3], INTENT)

    assert [sent.headers["Idempotency-Key"] for sent in stripe_side.sent] == keys


# --- the payments service over Stripe -----------------------------------------------------


async def test_the_payments_service_authorizes_and_captures_through_stripe(db: Database) -> None:
    stripe_processor, stripe_side = processor(
        {CREATE: "payment_intent_requires_capture", CAPTURE: "payment_intent_succeeded"}
    )
    payments = PaymentsService(db, provider=stripe_processor, clock=SystemClock())

    authorized = await payments.authorize("checkout-stripe-1", usd(2500), "card", token="tok_visa")
    captured = await payments.capture(authorized.id)

    assert authorized.status is PaymentStatus.AUTHORIZED
    assert captured.status is PaymentStatus.CAPTURED
    assert captured.captured == usd(2500)
    create, capture = stripe_side.sent
    assert create.headers["Idempotency-Key"] == authorized.id
    assert capture.path == f"/v1/payment_intents/{INTENT}/capture"
    assert capture.headers["Idempotency-Key"] == f"{authorized.id}:capture"
    assert capture.form == {"amount_to_capture": "2500"}
