"""The built-in test gateway: a card processor in test mode, for development and tests.

It knows a handful of test tokens and nothing else; it never sees a card number:

- `tok_visa` approves;
- `tok_slow` approves after `SLOW_ANSWER_SECONDS`: a processor having a slow day, its answers
  late enough to break the checkout's one-second objective but well within the shop's timeout
  (load rehearsals send it while their "slow provider" fault lasts);
- `tok_chargeDeclined` declines with "card_declined";
- `tok_chargeDeclinedInsufficientFunds` declines with "insufficient_funds";
- `tok_timeout` waits `timeout_delay` seconds and raises ProviderUnavailable (never authorizes);
- `tok_captureFails` approves, but every capture of that charge raises ProviderUnavailable
  (and a charge, which captures at once, raises it without charging);
- `tok_answerLost` approves, but the first answer under a key is lost on its way back
  (ProviderUnavailable after the charge was made); asking again under that key gets the
  approval, and no second charge;
- any other token declines with "invalid_token".

`latency` seconds pass before every answer, as with a real processor over the network.

Its state lives in its own tables, so it stays idempotent across restarts: every idempotency
key it has answered is in payments_gateway_requests with the answer it gave, and a repeated
key gets that answer back without acting again. A key is claimed (inserted) first in each
transaction, so concurrent calls with one key queue behind each other on its row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.batching import Batcher, Submitted
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.payments.domain import ProviderOutcome, ProviderUnavailable
from colonnade.modules.payments.schema import gateway_charges, gateway_requests

_DECLINES = {
    "tok_chargeDeclined": "card_declined",
    "tok_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
_TIMES_OUT = "tok_timeout"
_CAPTURE_FAILS = "tok_captureFails"
_ANSWER_LOST = "tok_answerLost"
_SLOW = "tok_slow"
_APPROVES = {"tok_visa", _CAPTURE_FAILS, _ANSWER_LOST, _SLOW}
SLOW_ANSWER_SECONDS = 1.5


class TestGateway:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self, db: Database, *, clock: Clock, timeout_delay: float = 0.0, latency: float = 0.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._timeout_delay = timeout_delay
        self._latency = latency
        self._charges = Batcher[tuple[str, Money, ProviderOutcome], ProviderOutcome](
            "gateway", self._write_charges
        )

    async def authorize(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        await asyncio.sleep(self._latency + (SLOW_ANSWER_SECONDS if token == _SLOW else 0))
        if token == _TIMES_OUT:
            return await self._time_out(key)
        async with self._db.transaction() as uow:
            if not await self._claim(uow, key, "authorize"):
                return await self._answer_of(uow, key)
            if token in _APPROVES:
                charge_id = new_id()
                await uow.execute(
                    gateway_charges.insert().values(
                        id=charge_id,
                        authorize_key=key,
                        currency=amount.currency,
                        amount=amount.amount,
                        captured_amount=0,
                        refunded_amount=0,
                        status="authorized",
                        capture_fails=token == _CAPTURE_FAILS,
                        created_at=self._clock.now(),
                    )
                )
                outcome = ProviderOutcome.approve(charge_id)
            else:
                outcome = ProviderOutcome.decline(_DECLINES.get(token, "invalid_token"))
            await self._answer(uow, key, outcome)
            await uow.commit()
        if token == _ANSWER_LOST:
            raise ProviderUnavailable("the test gateway's answer was lost (tok_answerLost)")
        return outcome

    async def charge(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        """Authorize and capture at once. The answer is decided by the token before anything
        is written, and the charges asked for meanwhile are written together (as a
        processor's own ledger would batch them): per batch, one statement claims the keys
        with their answers and one writes the approved charges."""
        await asyncio.sleep(self._latency + (SLOW_ANSWER_SECONDS if token == _SLOW else 0))
        if token == _TIMES_OUT:
            return await self._time_out(key)
        if token == _CAPTURE_FAILS:
            # The authorization is let go at once and nothing is written: a retry fails alike.
            raise ProviderUnavailable("the test gateway failed to capture (tok_captureFails)")
        outcome = (
            ProviderOutcome.approve(new_id())
            if token in _APPROVES
            else ProviderOutcome.decline(_DECLINES.get(token, "invalid_token"))
        )
        answered = await self._charges.submit((key, amount, outcome))
        if token == _ANSWER_LOST and answered == outcome:
            raise ProviderUnavailable("the test gateway's answer was lost (tok_answerLost)")
        return answered

    async def _write_charges(
        self, batch: Sequence[Submitted[tuple[str, Money, ProviderOutcome]]]
    ) -> list[ProviderOutcome]:
        asked = {s.request[0]: s.request for s in batch}
        now = self._clock.now()
        async with self._db.transaction() as uow:
            claim = (
                _insert(uow.connection, gateway_requests)
                .on_conflict_do_nothing()
                .returning(gateway_requests.c.idempotency_key)
            )
            rows = [
                {
                    "idempotency_key": key,
                    "operation": "charge",
                    "approved": outcome.approved,
                    "charge_id": outcome.reference,
                    "decline_reason": outcome.decline_reason,
                    "created_at": now,
                }
                for key, _, outcome in asked.values()
            ]
            claimed = set((await uow.execute(claim, rows)).scalars().all())
            approved = [a for key, a in asked.items() if key in claimed and a[2].approved]
            if approved:
                await uow.execute(
                    gateway_charges.insert(),
                    [
                        {
                            "id": outcome.reference,
                            "authorize_key": key,
                            "currency": amount.currency,
                            "amount": amount.amount,
                            "captured_amount": amount.amount,
                            "refunded_amount": 0,
                            "status": "captured",
                            "capture_fails": False,
                            "created_at": now,
                        }
                        for key, amount, outcome in approved
                    ],
                )
            # A key answered before (a retry) gets its first answer back.
            earlier = {
                key: await _stored(uow.connection, key) for key in asked if key not in claimed
            }
            await uow.commit()
        return [
            asked[s.request[0]][2]
            if s.request[0] in claimed
            else _known_answer(earlier, s.request[0])
            for s in batch
        ]

    async def capture(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        await asyncio.sleep(self._latency)
        async with self._db.transaction() as uow:
            if not await self._claim(uow, key, "capture"):
                return await self._answer_of(uow, key)
            charge = await _locked_charge(uow, reference)
            if charge is not None and charge.capture_fails:
                # Leaving without commit gives the key back: a retry fails the same way.
                raise ProviderUnavailable("the test gateway failed to capture (tok_captureFails)")
            if charge is None:
                outcome = ProviderOutcome.decline("no_such_charge")
            elif charge.status != "authorized":
                outcome = ProviderOutcome.decline(f"charge_{charge.status}", charge.id)
            elif amount.currency != charge.currency or amount.amount > charge.amount:
                outcome = ProviderOutcome.decline("amount_exceeds_authorization", charge.id)
            else:
                await uow.execute(
                    update(gateway_charges)
                    .where(gateway_charges.c.id == charge.id)
                    .values(status="captured", captured_amount=amount.amount)
                )
                outcome = ProviderOutcome.approve(charge.id)
            await self._answer(uow, key, outcome)
            await uow.commit()
        return outcome

    async def void(self, key: str, reference: str) -> ProviderOutcome:
        await asyncio.sleep(self._latency)
        async with self._db.transaction() as uow:
            if not await self._claim(uow, key, "void"):
                return await self._answer_of(uow, key)
            charge = await _locked_charge(uow, reference)
            if charge is None:
                # Nothing was authorized under that reference. Answer its key now as voided,
                # so an authorization arriving late under it cannot charge anyone.
                await uow.execute(
                    _insert(uow.connection, gateway_requests)
                    .values(
                        idempotency_key=reference,
                        operation="authorize",
                        charge_id=None,
                        approved=False,
                        decline_reason="voided",
                        created_at=self._clock.now(),
                    )
                    .on_conflict_do_nothing()
                )
                outcome = ProviderOutcome.approve(reference)
            elif charge.status == "captured":
                outcome = ProviderOutcome.decline("charge_captured", charge.id)
            else:
                await uow.execute(
                    update(gateway_charges)
                    .where(gateway_charges.c.id == charge.id)
                    .values(status="voided")
                )
                outcome = ProviderOutcome.approve(charge.id)
            await self._answer(uow, key, outcome)
            await uow.commit()
        return outcome

    async def refund(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        await asyncio.sleep(self._latency)
        async with self._db.transaction() as uow:
            if not await self._claim(uow, key, "refund"):
                return await self._answer_of(uow, key)
            charge = await _locked_charge(uow, reference)
            if charge is None:
                outcome = ProviderOutcome.decline("no_such_charge")
            elif charge.status != "captured":
                outcome = ProviderOutcome.decline(f"charge_{charge.status}", charge.id)
            elif (
                amount.currency != charge.currency
                or charge.refunded_amount + amount.amount > charge.captured_amount
            ):
                outcome = ProviderOutcome.decline("amount_exceeds_capture", charge.id)
            else:
                await uow.execute(
                    update(gateway_charges)
                    .where(gateway_charges.c.id == charge.id)
                    .values(refunded_amount=gateway_charges.c.refunded_amount + amount.amount)
                )
                outcome = ProviderOutcome.approve(charge.id)
            await self._answer(uow, key, outcome)
            await uow.commit()
        return outcome

    # --- keys -----------------------------------------------------------------------------

    async def _time_out(self, key: str) -> ProviderOutcome:
        """A key that was answered (voided meanwhile) keeps its answer; otherwise no answer."""
        known = await self._known(key)
        if known is not None:
            return known
        await asyncio.sleep(self._timeout_delay)
        raise ProviderUnavailable("the test gateway timed out (tok_timeout)")

    async def _known(self, key: str) -> ProviderOutcome | None:
        async with self._db.reading() as conn:
            return await _stored(conn, key)

    async def _claim(
        self, uow: UnitOfWork, key: str, operation: str, answer: ProviderOutcome | None = None
    ) -> bool:
        """Take the key for this transaction, with its answer when that is known already;
        False when someone already answered it."""
        claimed = await uow.execute(
            _insert(uow.connection, gateway_requests)
            .values(
                idempotency_key=key,
                operation=operation,
                approved=answer is not None and answer.approved,
                charge_id=answer.reference if answer else None,
                decline_reason=answer.decline_reason if answer else None,
                created_at=self._clock.now(),
            )
            .on_conflict_do_nothing()
        )
        return bool(claimed.rowcount == 1)

    async def _answer(self, uow: UnitOfWork, key: str, outcome: ProviderOutcome) -> None:
        await uow.execute(
            update(gateway_requests)
            .where(gateway_requests.c.idempotency_key == key)
            .values(
                approved=outcome.approved,
                charge_id=outcome.reference,
                decline_reason=outcome.decline_reason,
            )
        )

    async def _answer_of(self, uow: UnitOfWork, key: str) -> ProviderOutcome:
        stored = await _stored(uow.connection, key)
        assert stored is not None  # the claim failed because the key is there
        return stored


async def _stored(conn: AsyncConnection, key: str) -> ProviderOutcome | None:
    row = (
        await conn.execute(
            select(
                gateway_requests.c.approved,
                gateway_requests.c.charge_id,
                gateway_requests.c.decline_reason,
            ).where(gateway_requests.c.idempotency_key == key)
        )
    ).one_or_none()
    if row is None:
        return None
    return ProviderOutcome(
        approved=bool(row.approved), reference=row.charge_id, decline_reason=row.decline_reason
    )


async def _locked_charge(uow: UnitOfWork, reference: str) -> Any:
    return (
        await uow.execute(
            select(gateway_charges)
            .where(
                or_(
                    gateway_charges.c.id == reference,
                    gateway_charges.c.authorize_key == reference,
                )
            )
            .with_for_update()
        )
    ).one_or_none()


def _known_answer(earlier: dict[str, ProviderOutcome | None], key: str) -> ProviderOutcome:
    answer = earlier.get(key)
    assert answer is not None  # the claim failed because the key is there
    return answer


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
