"""Payments against real databases: idempotent authorizations, captures exactly once,
refunds never above the capture, gift cards never below zero, even under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.payments.adapters.test_gateway import SLOW_ANSWER_SECONDS, TestGateway
from colonnade.modules.payments.schema import gateway_charges
from colonnade.modules.payments.schema import payments as payments_table
from colonnade.modules.payments.service import (
    CheckoutAlreadyPaid,
    Payment,
    PaymentDeclined,
    PaymentsService,
    PaymentStateConflict,
    PaymentStatus,
    ProviderRefused,
    ProviderUnavailable,
    RefundExceedsCapture,
)
from tests.conftest import count_rows

USD = "USD"


def usd(amount: int) -> Money:
    return Money(amount, USD)


@pytest.fixture
async def busy_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=25)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 28, 9, tzinfo=UTC))


@pytest.fixture
def gateway(busy_db: Database, clock: SettableClock) -> TestGateway:
    return TestGateway(busy_db, clock=clock)


@pytest.fixture
def payments(busy_db: Database, gateway: TestGateway, clock: SettableClock) -> PaymentsService:
    return PaymentsService(busy_db, provider=gateway, clock=clock)


async def event_types(db: Database) -> list[str]:
    async with db.reading() as conn:
        return list(await conn.scalars(select(outbox.c.event_type).order_by(outbox.c.id)))


async def captured_card(payments: PaymentsService, amount: int = 5000) -> Payment:
    payment = await payments.authorize("chk-1", usd(amount), "card", token="tok_visa")
    return await payments.capture(payment.id)


# --- authorize --------------------------------------------------------------------------


async def test_a_visa_test_card_is_authorized_and_announced(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await payments.authorize("chk-1", usd(2599), "card", token="tok_visa")

    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.authorized == usd(2599)
    assert payment.captured == usd(0)
    assert await payments.payment_for_checkout("chk-1") == payment
    assert await event_types(busy_db) == ["payments.PaymentAuthorized"]


async def test_authorizing_one_checkout_again_returns_the_same_payment(
    busy_db: Database, payments: PaymentsService
) -> None:
    first = await payments.authorize("chk-1", usd(2599), "card", token="tok_visa")
    again = await payments.authorize("chk-1", usd(2599), "card", token="tok_visa")

    assert again == first
    assert await count_rows(busy_db, "payments_payments") == 1
    assert await count_rows(busy_db, "payments_gateway_charges") == 1


async def test_concurrent_authorizations_of_one_checkout_authorize_once(
    busy_db: Database, payments: PaymentsService
) -> None:
    results = await asyncio.gather(
        *(payments.authorize("chk-1", usd(2599), "card", token="tok_visa") for _ in range(20))
    )

    assert {p.id for p in results} == {results[0].id}
    assert {p.status for p in results} == {PaymentStatus.AUTHORIZED}
    assert await count_rows(busy_db, "payments_gateway_charges") == 1
    assert await event_types(busy_db) == ["payments.PaymentAuthorized"]


async def test_the_same_checkout_with_another_amount_is_refused(payments: PaymentsService) -> None:
    await payments.authorize("chk-1", usd(2599), "card", token="tok_visa")
    with pytest.raises(CheckoutAlreadyPaid):
        await payments.authorize("chk-1", usd(9999), "card", token="tok_visa")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("tok_somethingElse", "invalid_token"),
    ],
)
async def test_a_declined_card_fails_with_its_reason(
    busy_db: Database, payments: PaymentsService, token: str, reason: str
) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await payments.authorize("chk-1", usd(2599), "card", token=token)

    assert declined.value.reason == reason
    assert declined.value.status == 402
    assert declined.value.problem()["code"] == "payment_declined"
    stored = await payments.payment_for_checkout("chk-1")
    assert (stored.status, stored.decline_reason) == (PaymentStatus.FAILED, reason)
    assert await event_types(busy_db) == ["payments.PaymentFailed"]
    # Asking again declines again, without a second attempt at the provider.
    with pytest.raises(PaymentDeclined):
        await payments.authorize("chk-1", usd(2599), "card", token=token)
    assert await count_rows(busy_db, "payments_gateway_requests") == 1


async def test_a_provider_timeout_leaves_an_unknown_payment_that_reconcile_voids(
    busy_db: Database, payments: PaymentsService
) -> None:
    with pytest.raises(ProviderUnavailable) as unavailable:
        await payments.authorize("chk-1", usd(2599), "card", token="tok_timeout")
    assert unavailable.value.status == 503
    assert unavailable.value.code == "payment_provider_unavailable"
    assert (await payments.payment_for_checkout("chk-1")).status is PaymentStatus.UNKNOWN

    assert await payments.reconcile() == 1

    payment = await payments.payment_for_checkout("chk-1")
    assert payment.status is PaymentStatus.VOIDED
    assert await count_rows(busy_db, "payments_gateway_charges") == 0
    assert await payments.reconcile() == 0


async def test_the_gateway_waits_the_configured_delay_before_timing_out(
    busy_db: Database, clock: SettableClock
) -> None:
    gateway = TestGateway(busy_db, clock=clock, timeout_delay=0.05)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ProviderUnavailable):
        await gateway.authorize("key-1", usd(100), "tok_timeout")
    assert asyncio.get_running_loop().time() - started >= 0.05


async def test_tok_slow_approves_but_only_after_its_delay(gateway: TestGateway) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    authorized, charged = await asyncio.gather(
        gateway.authorize("key-1", usd(100), "tok_slow"),
        gateway.charge("key-2", usd(100), "tok_slow"),
    )

    assert (authorized.approved, charged.approved) == (True, True)
    assert loop.time() - started >= SLOW_ANSWER_SECONDS


async def test_reconcile_voids_an_authorization_whose_process_died(
    payments: PaymentsService, gateway: TestGateway, clock: SettableClock, busy_db: Database
) -> None:
    payment = await payments.authorize("chk-1", usd(2599), "card", token="tok_visa")
    # As if the process died after the provider approved but before the answer was stored.
    async with busy_db.transaction() as uow:
        await uow.execute(
            payments_table.update().values(
                status="authorizing", provider_reference=None, updated_at=clock.now()
            )
        )
        await uow.commit()
    assert await payments.reconcile() == 0  # not stale yet
    clock.advance(timedelta(minutes=10))

    assert await payments.reconcile() == 1
    assert (await payments.payment(payment.id)).status is PaymentStatus.VOIDED
    async with busy_db.reading() as conn:
        assert await conn.scalar(select(gateway_charges.c.status)) == "voided"


# --- capture and void -------------------------------------------------------------------


async def test_capture_happens_exactly_once_when_twenty_race(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await payments.authorize("chk-1", usd(5000), "card", token="tok_visa")

    results = await asyncio.gather(*(payments.capture(payment.id) for _ in range(20)))

    assert {(p.status, p.captured) for p in results} == {(PaymentStatus.CAPTURED, usd(5000))}
    assert (await event_types(busy_db)).count("payments.PaymentCaptured") == 1
    assert await count_rows(busy_db, "payments_gateway_requests") == 2  # authorize, capture


async def test_a_capture_the_provider_cannot_make_leaves_the_authorization(
    payments: PaymentsService,
) -> None:
    payment = await payments.authorize("chk-1", usd(5000), "card", token="tok_captureFails")
    assert payment.status is PaymentStatus.AUTHORIZED

    with pytest.raises(ProviderUnavailable):
        await payments.capture(payment.id)

    assert (await payments.payment(payment.id)).status is PaymentStatus.AUTHORIZED
    assert (await payments.void(payment.id)).status is PaymentStatus.VOIDED


async def test_voiding_is_idempotent_and_a_voided_payment_cannot_be_captured(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await payments.authorize("chk-1", usd(5000), "card", token="tok_visa")

    assert (await payments.void(payment.id)).status is PaymentStatus.VOIDED
    assert (await payments.void(payment.id)).status is PaymentStatus.VOIDED
    with pytest.raises(PaymentStateConflict):
        await payments.capture(payment.id)
    assert (await event_types(busy_db)).count("payments.PaymentVoided") == 1


async def test_a_captured_payment_cannot_be_voided(payments: PaymentsService) -> None:
    payment = await captured_card(payments)
    with pytest.raises(PaymentStateConflict):
        await payments.void(payment.id)


# --- refunds ----------------------------------------------------------------------------


async def test_partial_refunds_add_up_to_a_full_refund(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await captured_card(payments, 5000)

    partly = await payments.refund(payment.id, usd(2000), key="r-1")
    assert (partly.status, partly.refunded) == (PaymentStatus.CAPTURED, usd(2000))
    fully = await payments.refund(payment.id, usd(3000), key="r-2")
    assert (fully.status, fully.refunded) == (PaymentStatus.REFUNDED, usd(5000))

    with pytest.raises(RefundExceedsCapture) as exceeded:
        await payments.refund(payment.id, usd(1), key="r-3")
    assert exceeded.value.status == 409
    assert (await event_types(busy_db)).count("payments.PaymentRefunded") == 2


async def test_a_refund_key_refunds_once(busy_db: Database, payments: PaymentsService) -> None:
    payment = await captured_card(payments, 5000)

    await payments.refund(payment.id, usd(1000), key="r-1")
    again = await payments.refund(payment.id, usd(1000), key="r-1")

    assert again.refunded == usd(1000)
    assert await count_rows(busy_db, "payments_refunds") == 1


async def test_one_refund_key_sent_twenty_times_at_once_refunds_once(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await captured_card(payments, 5000)

    outcomes = await asyncio.gather(
        *(payments.refund(payment.id, usd(5000), key="all-back") for _ in range(20))
    )

    assert {o.refunded for o in outcomes} == {usd(5000)}
    assert await count_rows(busy_db, "payments_refunds") == 1
    assert (await event_types(busy_db)).count("payments.PaymentRefunded") == 1


async def test_twenty_concurrent_refunds_never_exceed_the_capture(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await captured_card(payments, 5000)

    async def attempt(i: int) -> Payment | RefundExceedsCapture:
        try:
            return await payments.refund(payment.id, usd(1000), key=f"r-{i}")
        except RefundExceedsCapture as refused:
            return refused

    outcomes = await asyncio.gather(*(attempt(i) for i in range(20)))

    assert sum(isinstance(o, Payment) for o in outcomes) == 5
    assert sum(isinstance(o, RefundExceedsCapture) for o in outcomes) == 15
    final = await payments.payment(payment.id)
    assert (final.status, final.refunded) == (PaymentStatus.REFUNDED, usd(5000))
    assert await count_rows(busy_db, "payments_refunds") == 5
    assert (await event_types(busy_db)).count("payments.PaymentRefunded") == 5


async def test_an_uncaptured_payment_cannot_be_refunded(payments: PaymentsService) -> None:
    payment = await payments.authorize("chk-1", usd(5000), "card", token="tok_visa")
    with pytest.raises(PaymentStateConflict):
        await payments.refund(payment.id, usd(100), key="r-1")


# --- bank transfer ----------------------------------------------------------------------


async def test_a_bank_transfer_waits_for_staff_to_confirm_it(
    busy_db: Database, payments: PaymentsService
) -> None:
    payment = await payments.authorize("chk-1", usd(12000), "bank_transfer")
    assert payment.status is PaymentStatus.PENDING
    assert payment.transfer_reference is not None
    assert payment.transfer_reference.startswith("CLN-")

    confirmed = await payments.confirm_transfer(payment.id, usd(12000))
    assert (confirmed.status, confirmed.captured) == (PaymentStatus.CAPTURED, usd(12000))
    assert await payments.confirm_transfer(payment.id, usd(12000)) == confirmed
    assert await event_types(busy_db) == ["payments.PaymentCaptured"]


# --- gift cards -------------------------------------------------------------------------


async def test_a_gift_card_pays_and_its_balance_goes_down(payments: PaymentsService) -> None:
    card = await payments.issue_gift_card(usd(10000))

    payment = await payments.authorize("chk-1", usd(2500), "gift_card", gift_card_code=card.code)

    assert (payment.status, payment.authorized, payment.remaining) == (
        PaymentStatus.AUTHORIZED,
        usd(2500),
        usd(0),
    )
    assert await payments.gift_card_balance(card.code) == usd(7500)
    captured = await payments.capture(payment.id)
    assert captured.captured == usd(2500)
    await payments.refund(payment.id, usd(500), key="r-1")
    assert await payments.gift_card_balance(card.code) == usd(8000)


async def test_a_gift_card_short_of_the_total_pays_what_it_has_and_reports_the_rest(
    payments: PaymentsService,
) -> None:
    card = await payments.issue_gift_card(usd(3000))

    payment = await payments.authorize("chk-1", usd(5000), "gift_card", gift_card_code=card.code)

    assert (payment.authorized, payment.remaining) == (usd(3000), usd(2000))
    assert await payments.gift_card_balance(card.code) == usd(0)
    rest = await payments.authorize("chk-1:card", payment.remaining, "card", token="tok_visa")
    assert rest.authorized == usd(2000)


async def test_voiding_a_gift_card_payment_gives_the_balance_back(
    payments: PaymentsService,
) -> None:
    card = await payments.issue_gift_card(usd(3000))
    payment = await payments.authorize("chk-1", usd(1000), "gift_card", gift_card_code=card.code)

    await payments.void(payment.id)

    assert await payments.gift_card_balance(card.code) == usd(3000)


@pytest.mark.parametrize(
    ("code", "reason"), [("GC-NOPE-NOPE-NOPE-NOPE", "unknown_gift_card"), (None, "gift_card_empty")]
)
async def test_an_unknown_or_empty_gift_card_is_declined(
    payments: PaymentsService, code: str | None, reason: str
) -> None:
    card = await payments.issue_gift_card(usd(100))
    await payments.authorize("chk-0", usd(100), "gift_card", gift_card_code=card.code)

    with pytest.raises(PaymentDeclined) as declined:
        await payments.authorize("chk-1", usd(100), "gift_card", gift_card_code=code or card.code)
    assert declined.value.reason == reason


async def test_concurrent_payments_with_one_gift_card_never_overspend(
    busy_db: Database, payments: PaymentsService
) -> None:
    card = await payments.issue_gift_card(usd(10000))

    async def attempt(i: int) -> Payment | PaymentDeclined:
        try:
            return await payments.authorize(
                f"chk-{i}", usd(3000), "gift_card", gift_card_code=card.code
            )
        except PaymentDeclined as declined:
            return declined

    outcomes = await asyncio.gather(*(attempt(i) for i in range(20)))

    paid = [o for o in outcomes if isinstance(o, Payment)]
    # Three pay in full, one takes the last 1000, the rest find the card empty.
    assert sorted(p.authorized.amount for p in paid) == [1000, 3000, 3000, 3000]
    assert sum(isinstance(o, PaymentDeclined) for o in outcomes) == 16
    assert await payments.gift_card_balance(card.code) == usd(0)


async def test_a_provider_refusal_is_reported(
    payments: PaymentsService, gateway: TestGateway
) -> None:
    payment = await payments.authorize("chk-1", usd(5000), "card", token="tok_visa")
    await gateway.void("elsewhere", payment.id)  # someone voided it at the provider directly
    with pytest.raises(ProviderRefused):
        await payments.capture(payment.id)
