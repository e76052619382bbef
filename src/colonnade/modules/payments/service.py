"""Payments' public use cases: authorize, capture, void and refund, all idempotent.

Each method is a few short transactions and never holds one open across a call to the
provider. A card payment is written as `authorizing` before the provider is asked, under the
payment's id as the idempotency key, so a retry (or a crash in between) asks again with the
same key and gets the same answer instead of a second authorization. State changes are
conditional UPDATEs whose row count decides who won, and the table's CHECK constraints
refuse anything that would still slip through (captured <= authorized, refunded <= captured).

Split payments: a gift card pays what its balance covers and the payment reports the rest as
`remaining`; the checkout charges that rest as a second payment under a key of its own
(for instance "<checkout id>:card"), since each payment belongs to one checkout key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from colonnade.kernel.bulk import insert_rows, update_rows
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.payments import domain, postgres
from colonnade.modules.payments import refunds as refund_steps
from colonnade.modules.payments.domain import (
    CHARGE_CAPTURED,
    CheckoutAlreadyPaid,
    InvalidPayment,
    NoPaymentForCheckout,
    OrderAlreadyAttached,
    PaymentDeclined,
    PaymentMethod,
    PaymentProvider,
    PaymentStateConflict,
    PaymentStatus,
    ProviderCircuitOpen,
    ProviderOutcome,
    ProviderRefused,
    ProviderUnavailable,
    RefundExceedsCapture,
    RefundKeyReused,
    RefundStatus,
    TransferAmountMismatch,
    UnknownGiftCard,
    UnknownPayment,
)
from colonnade.modules.payments.events import (
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
)
from colonnade.modules.payments.records import (
    IssuedGiftCard,
    Payment,
    captured_event,
    credit_gift_card,
    insert_for,
    payment_of,
    payment_row,
    refund_by_key,
    settled_payment,
)
from colonnade.modules.payments.schema import gift_cards, payments

__all__ = [
    "CheckoutAlreadyPaid",
    "IssuedGiftCard",
    "Payment",
    "PaymentDeclined",
    "PaymentMethod",
    "PaymentProvider",
    "PaymentStateConflict",
    "PaymentStatus",
    "PaymentsService",
    "ProviderOutcome",
    "ProviderRefused",
    "ProviderUnavailable",
    "RefundExceedsCapture",
    "UnknownPayment",
]


# Payments whose provider answer never reached us: their void may find the money captured.
_UNANSWERED = (PaymentStatus.AUTHORIZING, PaymentStatus.UNKNOWN)


class PaymentsService:
    def __init__(self, db: Database, *, provider: PaymentProvider, clock: Clock) -> None:
        self._db = db
        self._provider = provider
        self._clock = clock

    # --- authorize ------------------------------------------------------------------------

    async def authorize(
        self,
        checkout_id: str,
        amount: Money,
        method: str,
        token: str | None = None,
        gift_card_code: str | None = None,
    ) -> Payment:
        """Authorize `amount` for a checkout. The same checkout id returns its existing
        payment (or its decline again) and never authorizes twice."""
        domain.valid_reference(checkout_id, "checkout_id")
        kind = domain.payment_method(method)
        token, code = domain.checked_instrument(kind, token, gift_card_code)
        domain.valid_amount(amount)
        if kind is PaymentMethod.GIFT_CARD:
            assert code is not None
            return await self._pay_with_gift_card(checkout_id, amount, code)
        initial = PaymentStatus.PENDING if kind is PaymentMethod.BANK_TRANSFER else None
        async with self._db.transaction() as uow:
            row, created = await self._open(uow, checkout_id, amount, kind, initial)
            await uow.commit()
        if not created and row.status != PaymentStatus.AUTHORIZING:
            return settled_payment(row)
        if kind is PaymentMethod.BANK_TRANSFER:
            return payment_of(row)
        assert token is not None
        try:
            outcome = await self._provider.authorize(row.id, amount, token)
        except ProviderCircuitOpen:
            # The provider was not asked. Under a fresh key it has nothing to void; a key
            # asked before may hold an answer we never got, which reconcile voids.
            await self._settle(row, PaymentStatus.VOIDED if created else PaymentStatus.UNKNOWN)
            raise
        except ProviderUnavailable:
            await self._settle(row, PaymentStatus.UNKNOWN)
            raise
        if outcome.approved:
            settled = await self._settle(
                row,
                PaymentStatus.AUTHORIZED,
                authorized_amount=amount.amount,
                provider_reference=outcome.reference,
            )
        else:
            reason = outcome.decline_reason or "declined"
            settled = await self._settle(row, PaymentStatus.FAILED, decline_reason=reason)
        return settled_payment(settled)

    # --- the batched purchase: one charge per card checkout ---------------------------------

    async def open_charges(
        self, uow: UnitOfWork, requests: Sequence[tuple[str, Money]]
    ) -> list[Payment]:
        """A card payment per (checkout id, amount), written as `authorizing` in the caller's
        transaction before the provider is asked, so recovery finds it whatever happens."""
        now = self._clock.now()
        opened = [
            Payment(
                id=new_id(),
                checkout_id=domain.valid_reference(checkout_id, "checkout_id"),
                order_id=None,
                method=PaymentMethod.CARD,
                status=PaymentStatus.AUTHORIZING,
                amount=domain.valid_amount(amount),
                authorized=Money.zero(amount.currency),
                captured=Money.zero(amount.currency),
                refunded=Money.zero(amount.currency),
                remaining=Money.zero(amount.currency),
                transfer_reference=None,
                decline_reason=None,
                created_at=now,
                updated_at=now,
            )
            for checkout_id, amount in requests
        ]
        await insert_rows(uow, payments, [_opened_row(p) for p in opened])
        return opened

    async def charge(self, payment: Payment, token: str) -> ProviderOutcome:
        """Ask the provider to authorize and capture an opened payment in one call, under
        the payment's id as the key. An approval or a decline is recorded by
        `record_charges`; no answer is recorded here, as `authorize` does."""
        domain.checked_instrument(PaymentMethod.CARD, token, None)
        try:
            return await self._provider.charge(payment.id, payment.amount, token)
        except ProviderCircuitOpen:
            # The provider was not asked under this fresh key: nothing to void there.
            await self._settle(payment, PaymentStatus.VOIDED)
            raise
        except ProviderUnavailable:
            await self._settle(payment, PaymentStatus.UNKNOWN)
            raise

    async def record_charges(
        self, uow: UnitOfWork, charged: Sequence[tuple[Payment, ProviderOutcome, str | None]]
    ) -> list[Payment | ColonnadeError]:
        """Record each provider answer (payment, outcome, the order it pays) in the caller's
        transaction: captured in full, or failed with the decline's reason. A payment that
        is no longer `authorizing` (reconcile took it) is refused alone."""
        if not charged:
            return []
        still_open = await _still_authorizing(uow, [p.id for p, _, _ in charged])
        now = self._clock.now()
        answers: list[Payment | ColonnadeError] = []
        rows: list[dict[str, Any]] = []
        for payment, outcome, order_id in charged:
            if payment.id not in still_open:
                answers.append(PaymentStateConflict(payment.id, "settled", "charged"))
                continue
            amount = payment.amount if outcome.approved else Money.zero(payment.amount.currency)
            settled = replace(
                payment,
                order_id=order_id,
                status=PaymentStatus.CAPTURED if outcome.approved else PaymentStatus.FAILED,
                authorized=amount,
                captured=amount,
                decline_reason=None if outcome.approved else outcome.decline_reason or "declined",
                updated_at=now,
            )
            answers.append(settled)
            rows.append(
                {
                    "id": settled.id,
                    "status": settled.status.value,
                    "authorized_amount": amount.amount,
                    "captured_amount": amount.amount,
                    "provider_reference": outcome.reference,
                    "decline_reason": settled.decline_reason,
                    "order_id": order_id,
                    "updated_at": now,
                }
            )
            if settled.decline_reason is not None:
                uow.record(
                    PaymentFailed(
                        payment_id=payment.id,
                        checkout_id=payment.checkout_id,
                        method=payment.method.value,
                        reason=settled.decline_reason,
                    )
                )
        if rows:
            await update_rows(uow, payments, rows)
        return answers

    async def drop_charges(self, uow: UnitOfWork, opened: Sequence[Payment]) -> None:
        """Void, in the caller's transaction, card payments opened by `open_charges` whose
        checkout ended before the provider was asked (its stock was refused): nothing is
        held there, so nothing is asked of it. One that is no longer `authorizing` is left."""
        if not opened:
            return
        voided = (
            await uow.execute(
                update(payments)
                .where(
                    payments.c.id.in_([p.id for p in opened]),
                    payments.c.status == PaymentStatus.AUTHORIZING.value,
                )
                .values(status=PaymentStatus.VOIDED.value, updated_at=self._clock.now())
                .returning(payments.c.id, payments.c.checkout_id)
            )
        ).all()
        for payment_id, checkout_id in voided:
            uow.record(PaymentVoided(payment_id=payment_id, checkout_id=checkout_id))

    async def _pay_with_gift_card(self, checkout_id: str, amount: Money, code: str) -> Payment:
        """All in one transaction: the gift card is ours, so no provider is waited on."""
        async with self._db.transaction() as uow:
            row, created = await self._open(uow, checkout_id, amount, PaymentMethod.GIFT_CARD)
            if not created:
                return settled_payment(row)
            card = (
                await uow.execute(
                    select(gift_cards.c.id, gift_cards.c.currency, gift_cards.c.balance)
                    .where(gift_cards.c.code_hash == domain.gift_card_hash(code))
                    .with_for_update()
                )
            ).one_or_none()
            take = 0 if card is None else domain.gift_card_take(card.balance, amount.amount)
            if card is None:
                reason = "unknown_gift_card"
            elif card.currency != amount.currency:
                reason = "gift_card_currency_mismatch"
            elif take == 0:
                reason = "gift_card_empty"
            else:
                # The lock above already serializes; the condition and CHECK have the last word.
                debited = await uow.execute(
                    update(gift_cards)
                    .where(gift_cards.c.id == card.id, gift_cards.c.balance >= take)
                    .values(balance=gift_cards.c.balance - take)
                )
                if debited.rowcount != 1:
                    raise PaymentStateConflict(row.id, "authorizing", "paid by this gift card")
                settled = await self._settle_in(
                    uow,
                    row,
                    PaymentStatus.AUTHORIZED,
                    authorized_amount=take,
                    gift_card_id=card.id,
                )
                await uow.commit()
                return payment_of(settled)
            settled = await self._settle_in(uow, row, PaymentStatus.FAILED, decline_reason=reason)
            await uow.commit()
        return settled_payment(settled)

    async def _open(
        self,
        uow: UnitOfWork,
        checkout_id: str,
        amount: Money,
        method: PaymentMethod,
        status: PaymentStatus | None = None,
    ) -> tuple[Any, bool]:
        """The checkout's payment, created as `authorizing` (or `status`) when it has none."""
        now = self._clock.now()
        status = status or PaymentStatus.AUTHORIZING
        reference = (
            domain.new_transfer_reference() if method is PaymentMethod.BANK_TRANSFER else None
        )
        created = await uow.execute(
            insert_for(uow.connection, payments)
            .values(
                id=new_id(),
                checkout_id=checkout_id,
                method=method.value,
                currency=amount.currency,
                amount=amount.amount,
                authorized_amount=0,
                captured_amount=0,
                refunded_amount=0,
                status=status.value,
                provider_reference=reference,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[payments.c.checkout_id])
            .returning(*payments.c)
        )
        row = created.one_or_none()
        if row is not None:
            return row, True
        # The checkout already has a payment (a retry): it must be the same one.
        row = (
            await uow.execute(select(payments).where(payments.c.checkout_id == checkout_id))
        ).one()
        if row.method != method.value or Money(row.amount, row.currency) != amount:
            raise CheckoutAlreadyPaid(checkout_id)
        return row, False

    async def _settle(self, row: Any, status: PaymentStatus, **values: Any) -> Any:
        async with self._db.transaction() as uow:
            settled = await self._settle_in(uow, row, status, **values)
            await uow.commit()
        return settled

    async def _settle_in(
        self, uow: UnitOfWork, row: Any, status: PaymentStatus, **values: Any
    ) -> Any:
        """Record the provider's answer unless another attempt recorded it first."""
        settled = (
            await uow.execute(
                update(payments)
                .where(
                    payments.c.id == row.id,
                    payments.c.status == PaymentStatus.AUTHORIZING.value,
                )
                .values(status=status.value, updated_at=self._clock.now(), **values)
                .returning(*payments.c)
            )
        ).one_or_none()
        if settled is None:
            return await payment_row(uow.connection, row.id)
        if status is PaymentStatus.AUTHORIZED:
            uow.record(
                PaymentAuthorized(
                    payment_id=row.id,
                    checkout_id=row.checkout_id,
                    method=row.method,
                    amount=settled.authorized_amount,
                    currency=row.currency,
                )
            )
        elif status is PaymentStatus.FAILED:
            uow.record(
                PaymentFailed(
                    payment_id=row.id,
                    checkout_id=row.checkout_id,
                    method=row.method,
                    reason=settled.decline_reason,
                )
            )
        return settled

    # --- capture, void --------------------------------------------------------------------

    async def capture(self, payment_id: str) -> Payment:
        """Take the authorized money. At most once: a repeat returns the captured payment."""
        row = await self._read(payment_id)
        if not domain.should_capture(payment_id, PaymentStatus(row.status)):
            return payment_of(row)
        if row.method == PaymentMethod.CARD.value:
            outcome = await self._provider.capture(
                f"{payment_id}:capture",
                row.provider_reference,
                Money(row.authorized_amount, row.currency),
            )
            if not outcome.approved:
                raise ProviderRefused(payment_id, "capture", outcome.decline_reason)
        async with self._db.transaction() as uow:
            captured = (
                await uow.execute(
                    update(payments)
                    .where(
                        payments.c.id == payment_id,
                        payments.c.status == PaymentStatus.AUTHORIZED.value,
                    )
                    .values(
                        status=PaymentStatus.CAPTURED.value,
                        captured_amount=payments.c.authorized_amount,
                        updated_at=self._clock.now(),
                    )
                    .returning(*payments.c)
                )
            ).one_or_none()
            if captured is None:
                current = await payment_row(uow.connection, payment_id)
                domain.should_capture(payment_id, PaymentStatus(current.status))
                return payment_of(current)
            uow.record(captured_event(captured))
            await uow.commit()
        return payment_of(captured)

    async def confirm_transfer(self, payment_id: str, amount: Money) -> Payment:
        """Staff saw the bank transfer arrive: the pending payment is captured."""
        row = await self._read(payment_id)
        if row.method != PaymentMethod.BANK_TRANSFER.value:
            raise InvalidPayment(f"payment '{payment_id}' is not a bank transfer")
        expected = Money(row.amount, row.currency)
        if amount != expected:
            raise TransferAmountMismatch(expected, amount)
        async with self._db.transaction() as uow:
            captured = (
                await uow.execute(
                    update(payments)
                    .where(
                        payments.c.id == payment_id,
                        payments.c.status == PaymentStatus.PENDING.value,
                    )
                    .values(
                        status=PaymentStatus.CAPTURED.value,
                        authorized_amount=amount.amount,
                        captured_amount=amount.amount,
                        updated_at=self._clock.now(),
                    )
                    .returning(*payments.c)
                )
            ).one_or_none()
            if captured is None:
                current = await payment_row(uow.connection, payment_id)
                if PaymentStatus(current.status) in domain.CAPTURED_STATUSES:
                    return payment_of(current)
                raise PaymentStateConflict(payment_id, current.status, "confirmed")
            uow.record(captured_event(captured))
            await uow.commit()
        return payment_of(captured)

    async def void(self, payment_id: str) -> Payment:
        """Let an authorization go (or an expected transfer). Voiding twice is harmless."""
        row = await self._read(payment_id)
        status = PaymentStatus(row.status)
        if not domain.should_void(payment_id, status):
            return payment_of(row)
        if row.method == PaymentMethod.CARD.value:
            # Without the provider's reference, void under the authorization's own key.
            try:
                outcome = await self._provider.void(
                    f"{payment_id}:void", row.provider_reference or payment_id
                )
            except ProviderUnavailable:
                if status not in (PaymentStatus.UNKNOWN, PaymentStatus.AUTHORIZING):
                    raise
                # No authorization is known to exist, so nothing is held for sure: it stays
                # unknown, and reconcile voids it once the provider answers again.
                return payment_of(await self._settle(row, PaymentStatus.UNKNOWN))
            if not outcome.approved:
                if outcome.decline_reason == CHARGE_CAPTURED and status in _UNANSWERED:
                    return await self._refund_lost_charge(row, outcome.reference or payment_id)
                raise ProviderRefused(payment_id, "void", outcome.decline_reason)
        async with self._db.transaction() as uow:
            voided = (
                await uow.execute(
                    update(payments)
                    .where(payments.c.id == payment_id, payments.c.status == status.value)
                    .values(status=PaymentStatus.VOIDED.value, updated_at=self._clock.now())
                    .returning(*payments.c)
                )
            ).one_or_none()
            if voided is None:
                # Someone moved it first: settle on what it is now.
                current = await payment_row(uow.connection, payment_id)
                if domain.should_void(payment_id, PaymentStatus(current.status)):
                    raise PaymentStateConflict(payment_id, current.status, "voided right now")
                return payment_of(current)
            if voided.gift_card_id is not None:
                await credit_gift_card(uow, voided.gift_card_id, voided.authorized_amount)
            uow.record(PaymentVoided(payment_id=payment_id, checkout_id=voided.checkout_id))
            await uow.commit()
        return payment_of(voided)

    async def _refund_lost_charge(self, row: Any, reference: str) -> Payment:
        """A charge captured the money but its answer never reached us (the process died
        between the provider's answer and its recording): give it all back."""
        amount = Money(row.amount, row.currency)
        outcome = await self._provider.refund(f"refund:{row.id}:lost-charge", reference, amount)
        if not outcome.approved:
            raise ProviderRefused(row.id, "refund", outcome.decline_reason)
        async with self._db.transaction() as uow:
            refunded = (
                await uow.execute(
                    update(payments)
                    .where(payments.c.id == row.id, payments.c.status == row.status)
                    .values(
                        status=PaymentStatus.REFUNDED.value,
                        authorized_amount=amount.amount,
                        captured_amount=amount.amount,
                        refunded_amount=amount.amount,
                        provider_reference=reference,
                        updated_at=self._clock.now(),
                    )
                    .returning(*payments.c)
                )
            ).one_or_none()
            if refunded is None:
                return payment_of(await payment_row(uow.connection, row.id))
            uow.record(
                PaymentRefunded(
                    payment_id=row.id,
                    refund_id=outcome.reference or reference,
                    order_id=row.order_id,
                    amount=amount.amount,
                    currency=amount.currency,
                )
            )
            await uow.commit()
        return payment_of(refunded)

    async def reconcile(self, stale_after: timedelta = timedelta(minutes=5)) -> int:
        """Void every payment whose authorization has no known answer: `unknown` ones, and
        `authorizing` ones older than `stale_after` (their process died). Returns how many."""
        cutoff = self._clock.now() - stale_after
        async with self._db.reading() as conn:
            ids = (
                await conn.scalars(
                    select(payments.c.id).where(
                        or_(
                            payments.c.status == PaymentStatus.UNKNOWN.value,
                            and_(
                                payments.c.status == PaymentStatus.AUTHORIZING.value,
                                payments.c.updated_at <= cutoff,
                            ),
                        )
                    )
                )
            ).all()
        voided = 0
        for payment_id in ids:
            try:
                if (await self.void(payment_id)).status is PaymentStatus.VOIDED:
                    voided += 1
            except (ProviderUnavailable, ProviderRefused, PaymentStateConflict):
                continue  # the next run tries again
        return voided

    async def attach_order(self, payment_id: str, order_id: str) -> Payment:
        domain.valid_reference(order_id, "order_id")
        async with self._db.transaction() as uow:
            attached = (
                await uow.execute(
                    update(payments)
                    .where(
                        payments.c.id == payment_id,
                        or_(payments.c.order_id.is_(None), payments.c.order_id == order_id),
                    )
                    .values(order_id=order_id, updated_at=self._clock.now())
                    .returning(*payments.c)
                )
            ).one_or_none()
            if attached is None:
                current = await payment_row(uow.connection, payment_id)
                raise OrderAlreadyAttached(payment_id, current.order_id)
            await uow.commit()
        return payment_of(attached)

    # --- refunds --------------------------------------------------------------------------

    async def refund(self, payment_id: str, amount: Money, key: str) -> Payment:
        """Give back part or all of the captured money. The same key refunds once; the
        total refunded never exceeds the capture."""
        domain.valid_reference(key, "key")
        domain.valid_amount(amount, "refund amount")
        async with self._db.transaction() as uow:
            refund = await refund_by_key(uow.connection, key)
            if refund is None:
                refund = await refund_steps.set_aside(uow, self._clock, payment_id, amount, key)
            await uow.commit()
        if refund.payment_id != payment_id or refund.amount != amount.amount:
            raise RefundKeyReused(key)
        if refund.status == RefundStatus.SUCCEEDED.value:
            return await self.payment(payment_id)
        row = await self._read(payment_id)
        if row.method == PaymentMethod.CARD.value:
            # A provider that does not answer leaves the refund `requested`, its amount set
            # aside: a retry with the same key asks again and completes it.
            outcome = await self._provider.refund(f"refund:{key}", row.provider_reference, amount)
            if not outcome.approved:
                await refund_steps.give_back_set_aside(self._db, self._clock, refund)
                raise ProviderRefused(payment_id, "refund", outcome.decline_reason)
        return await refund_steps.complete_refund(self._db, refund)

    async def refund_under(self, key: str) -> Money | None:
        """The amount a refund with this key asked for, if there is one (to repeat it)."""
        async with self._db.reading() as conn:
            refund = await refund_by_key(conn, key)
            if refund is None:
                return None
            currency = (await payment_row(conn, refund.payment_id)).currency
        return Money(int(refund.amount), currency)

    # --- gift cards -----------------------------------------------------------------------

    async def issue_gift_card(self, amount: Money) -> IssuedGiftCard:
        domain.valid_amount(amount, "gift card amount")
        code = domain.new_gift_card_code()
        card_id = new_id()
        async with self._db.transaction() as uow:
            await uow.execute(
                gift_cards.insert().values(
                    id=card_id,
                    code_hash=domain.gift_card_hash(code),
                    currency=amount.currency,
                    initial_amount=amount.amount,
                    balance=amount.amount,
                    created_at=self._clock.now(),
                )
            )
            await uow.commit()
        return IssuedGiftCard(id=card_id, code=code, balance=amount)

    async def gift_card_balance(self, code: str) -> Money:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(
                    select(gift_cards.c.balance, gift_cards.c.currency).where(
                        gift_cards.c.code_hash == domain.gift_card_hash(code)
                    )
                )
            ).one_or_none()
        if row is None:
            raise UnknownGiftCard()
        return Money(row.balance, row.currency)

    # --- reads ----------------------------------------------------------------------------

    async def payment(self, payment_id: str) -> Payment:
        return payment_of(await self._read(payment_id))

    async def payment_for_checkout(self, checkout_id: str) -> Payment:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(payments).where(payments.c.checkout_id == checkout_id))
            ).one_or_none()
        if row is None:
            raise NoPaymentForCheckout(checkout_id)
        return payment_of(row)

    async def _read(self, payment_id: str) -> Any:
        async with self._db.reading() as conn:
            return await payment_row(conn, payment_id)


async def _still_authorizing(uow: UnitOfWork, ids: list[str]) -> set[str]:
    """Which of these payments are still waiting for their provider's answer, locked."""
    if uow.on_postgresql:
        rows = await uow.fetch(postgres.STILL_AUTHORIZING, ids, PaymentStatus.AUTHORIZING.value)
        return {row[0] for row in rows}
    query = select(payments.c.id).where(
        payments.c.id.in_(ids), payments.c.status == PaymentStatus.AUTHORIZING.value
    )
    return set((await uow.execute(query)).scalars().all())


def _opened_row(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "checkout_id": payment.checkout_id,
        "method": payment.method.value,
        "currency": payment.amount.currency,
        "amount": payment.amount.amount,
        "authorized_amount": 0,
        "captured_amount": 0,
        "refunded_amount": 0,
        "status": payment.status.value,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }
