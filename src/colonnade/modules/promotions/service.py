"""Promotions' public use cases: make and end discount codes, weigh a code against a cart,
and hold, keep or give back its uses at checkout.

A use is held in the checkout's own transaction (`decide_batch` then `keep_batch`). A
promotion with a usage limit counts its uses on its own row, locked while the batch's uses
are counted, so however many buyers race for the last uses of a code, no more are held than
its limit allows; one with a limit per customer is locked likewise while their uses are
counted. A promotion without limits locks nothing: a Black Friday code on every order must
not make every checkout wait for the one before. A checkout that fails, and an order that is
cancelled, give their use back (`give_back`), once.

Carts weigh codes against promotions kept for a few seconds (and dropped at once when this
process changes one): entering a code costs no read of the promotion; checkout reads it
afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.bulk import insert_rows, update_rows
from colonnade.kernel.cache import Recent
from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError, NotFound
from colonnade.kernel.events import Envelope
from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import PROMOTION_USES, PROMOTIONS_RUNNING
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.promotions import domain
from colonnade.modules.promotions.domain import (
    Basket,
    InvalidCodeCount,
    InvalidPromotion,
    InvalidPromotionCode,
    InvalidPromotionWindow,
    Promotion,
    PromotionCodeTaken,
    PromotionCodeUsed,
    PromotionCustomerLimitReached,
    PromotionCustomersOnly,
    PromotionExpired,
    PromotionMinimumNotMet,
    PromotionNotApplicable,
    PromotionNotInCurrency,
    PromotionNotInMarket,
    PromotionNotStarted,
    PromotionUsedUp,
    UnknownPromotionCode,
)
from colonnade.modules.promotions.events import PromotionChanged
from colonnade.modules.promotions.schema import codes as batch_codes
from colonnade.modules.promotions.schema import promotions, uses

__all__ = [
    "REFUSALS",
    "Basket",
    "InvalidCodeCount",
    "InvalidPromotion",
    "InvalidPromotionCode",
    "InvalidPromotionWindow",
    "NewPromotion",
    "Offer",
    "Promotion",
    "PromotionCodeTaken",
    "PromotionCodeUsed",
    "PromotionCustomerLimitReached",
    "PromotionCustomersOnly",
    "PromotionExpired",
    "PromotionMinimumNotMet",
    "PromotionNotApplicable",
    "PromotionNotFound",
    "PromotionNotInCurrency",
    "PromotionNotInMarket",
    "PromotionNotStarted",
    "PromotionReport",
    "PromotionUsedUp",
    "PromotionsService",
    "UnknownPromotionCode",
    "Uses",
]


# Why a code a cart holds may not apply when it is entered, or at checkout.
REFUSALS: tuple[type[ColonnadeError], ...] = (
    InvalidPromotionCode,
    UnknownPromotionCode,
    PromotionNotStarted,
    PromotionExpired,
    PromotionUsedUp,
    PromotionCodeUsed,
    PromotionCustomerLimitReached,
    PromotionCustomersOnly,
    PromotionNotInMarket,
    PromotionNotInCurrency,
    PromotionMinimumNotMet,
)


# Codes of a batch are made this many to a transaction.
_CODES_AT_ONCE = 1000


class PromotionNotFound(NotFound):
    code = "promotion_not_found"

    def __init__(self, promotion_id: str) -> None:
        super().__init__(f"there is no promotion {promotion_id}", promotion_id=promotion_id)


@dataclass(frozen=True)
class NewPromotion:
    code: str
    percent_off: int | None = None
    amount_off: tuple[Money, ...] = ()
    min_subtotal: tuple[Money, ...] = ()
    markets: tuple[str, ...] = ()
    customers_only: bool = False
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    # None: from the moment it is made.
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    title: str | None = None


@dataclass(frozen=True)
class Offer:
    """What a promotion takes off one basket: in all, and from each line (by SKU)."""

    promotion_id: str
    code: str
    discount: Money
    lines: dict[str, int]
    # Whether the promotion counts its uses on its row (it has a usage limit).
    counted: bool = False
    # The single-use code of a batch the offer takes; None for the promotion's own code.
    single_code: str | None = None


@dataclass(frozen=True)
class Uses:
    """The uses of a promotion kept in one currency, and what they add up to."""

    currency: str
    uses: int
    discount: Money
    revenue: Money


@dataclass(frozen=True)
class PromotionReport:
    promotion: Promotion
    uses: tuple[Uses, ...]
    # Its batches of single-use codes: how many were made, and how many are held by orders.
    codes: int = 0
    codes_used: int = 0


class PromotionsService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        reference_cache_seconds: float = 0.0,
        changes: Changes | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._changes = changes
        # Promotions by code (None: no such code), for carts; checkout reads them afresh.
        self._kept: Recent[str, Promotion | None] = Recent(reference_cache_seconds)
        if changes is not None:
            changes.listen(PromotionChanged.event_type, lambda *_: self._kept.forget())

    def _committed(self, envelopes: list[Envelope]) -> None:
        self._kept.forget()
        if self._changes is not None:
            self._changes.committed(envelopes)

    # --- staff ---------------------------------------------------------------------------

    async def create(self, new: NewPromotion) -> Promotion:
        now = self._clock.now()
        made = domain.promotion(
            id=new_id(),
            code=new.code,
            title=new.title,
            percent_off=new.percent_off,
            amount_off=new.amount_off,
            min_subtotal=new.min_subtotal,
            markets=new.markets,
            customers_only=new.customers_only,
            usage_limit=new.usage_limit,
            per_customer_limit=new.per_customer_limit,
            starts_at=new.starts_at or now,
            ends_at=new.ends_at,
        )
        async with self._db.transaction() as uow:
            taken = await uow.execute(
                select(batch_codes.c.code).where(batch_codes.c.code == made.code)
            )
            if taken.first() is not None:
                raise PromotionCodeTaken(made.code)
            try:
                await uow.execute(
                    promotions.insert().values(**_row(made), created_at=now, updated_at=now)
                )
            except IntegrityError:
                raise PromotionCodeTaken(made.code) from None
            told = [uow.record(PromotionChanged(promotion_id=made.id, code=made.code))]
            await uow.commit()
        self._committed(told)
        await self.count_running()
        return made

    async def end(self, promotion_id: str) -> Promotion:
        """End a promotion now (a running one stops taking anything off; a scheduled one
        never starts). Ending an ended promotion changes nothing."""
        now = self._clock.now()
        async with self._db.transaction() as uow:
            row = (
                await uow.execute(
                    select(promotions).where(promotions.c.id == promotion_id).with_for_update()
                )
            ).first()
            if row is None:
                raise PromotionNotFound(promotion_id)
            found = _promotion(row)
            if found.ends_at is not None and found.ends_at <= now:
                return found
            # A promotion that has not started ends where it starts: an empty window.
            ends_at = max(now, found.starts_at)
            await uow.execute(
                update(promotions)
                .where(promotions.c.id == promotion_id)
                .values(ends_at=ends_at, updated_at=now)
            )
            told = [uow.record(PromotionChanged(promotion_id=found.id, code=found.code))]
            await uow.commit()
        self._committed(told)
        await self.count_running()
        return replace(found, ends_at=ends_at)

    async def count_running(self) -> int:
        """How many promotions run now, kept in a gauge the operations page shows: a sale
        that starts or ends on its clock moves it within the upkeep job's minute."""
        now = self._clock.now()
        async with self._db.reading() as conn:
            running = int(
                await conn.scalar(
                    select(func.count()).where(
                        promotions.c.starts_at <= now,
                        (promotions.c.ends_at.is_(None)) | (promotions.c.ends_at > now),
                    )
                )
                or 0
            )
        PROMOTIONS_RUNNING.set(running)
        return running

    async def promotions(self) -> list[Promotion]:
        """Every promotion with its uses held now, the latest to start first."""
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(select(promotions).order_by(promotions.c.starts_at.desc()))
            ).all()
            held: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(uses.c.promotion_id, func.count()).group_by(uses.c.promotion_id)
                    )
                ).all()
            )
        return [replace(_promotion(row), used=int(held.get(row.id, 0))) for row in rows]

    async def report(self, promotion_id: str) -> PromotionReport:
        """The promotion, and its uses kept (orders placed with it, less cancelled ones) with
        their discount and revenue, per currency."""
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(promotions).where(promotions.c.id == promotion_id))
            ).first()
            if row is None:
                raise PromotionNotFound(promotion_id)
            totals = await conn.execute(
                select(
                    uses.c.currency, func.count(), func.sum(uses.c.discount), func.sum(uses.c.total)
                )
                .where(uses.c.promotion_id == promotion_id)
                .group_by(uses.c.currency)
                .order_by(uses.c.currency)
            )
            per_currency = tuple(
                Uses(currency, int(n), Money(int(off), currency), Money(int(paid), currency))
                for currency, n, off, paid in totals
            )
            made, held = (
                await conn.execute(
                    select(func.count(), func.count(batch_codes.c.checkout_id)).where(
                        batch_codes.c.promotion_id == promotion_id
                    )
                )
            ).one()
        return PromotionReport(
            replace(_promotion(row), used=sum(u.uses for u in per_currency)),
            per_currency,
            codes=int(made),
            codes_used=int(held),
        )

    async def generate_codes(
        self, promotion_id: str, count: int, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """Make `count` single-use codes for a promotion, in transactions of a thousand;
        `progress` hears how many each made. Each code takes the promotion's discount off one
        order, within the promotion's window and limits."""
        count = domain.checked_count(count)
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(promotions).where(promotions.c.id == promotion_id))
            ).first()
        if row is None:
            raise PromotionNotFound(promotion_id)
        promotion = _promotion(row)
        made: list[str] = []
        while len(made) < count:
            now = self._clock.now()
            wanted = min(_CODES_AT_ONCE, count - len(made))
            async with self._db.transaction() as uow:
                # A code clashing with one made before (a chance in 10**17) is made again.
                new = await insert_rows(
                    uow,
                    batch_codes,
                    [
                        {
                            "code": domain.batch_code(promotion.code),
                            "promotion_id": promotion.id,
                            "checkout_id": None,
                            "created_at": now,
                        }
                        for _ in range(wanted)
                    ],
                    skip_conflicts_on=("code",),
                    returning="code",
                )
                await uow.commit()
            made.extend(new)
            if progress is not None:
                progress(len(new))
        return made

    # --- a cart ---------------------------------------------------------------------------

    async def offers(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, Basket]]
    ) -> list[Offer | ColonnadeError]:
        """What each (code, basket)'s code takes off the basket now, or why it cannot: the
        check a shopper's cart makes, on the caller's connection. Nothing is held."""
        if not wanted:
            return []
        typed = [code for code, _ in wanted]
        found = await self._cached(conn, typed)
        singles = await _single_codes(conn, [c for c in typed if c.upper() not in found])
        every = [*found.values(), *(p for p, _ in singles.values())]
        counted = await _uses_by_customer(conn, every, [b for _, b in wanted])
        answers: list[Offer | ColonnadeError] = []
        for code, basket in wanted:
            try:
                promotion, single = _known(found, singles, code)
                if single is not None and singles[single][1] is not None:
                    raise PromotionCodeUsed(single)
                domain.check(promotion, basket, self._clock.now())
                domain.check_uses(
                    promotion,
                    promotion.used,
                    counted.get((promotion.id, basket.customer_id), 0),
                )
                answers.append(_offer(promotion, basket, single))
            except ColonnadeError as refused:
                answers.append(refused)
        return answers

    # --- checkout -------------------------------------------------------------------------

    async def decide_batch(
        self, uow: UnitOfWork, wanted: Sequence[tuple[str, Basket]]
    ) -> list[Offer | ColonnadeError]:
        """Each (code, basket)'s offer at checkout, in arrival order, counting the uses the
        earlier ones in the batch take: the promotions' rows stay locked until the caller's
        transaction ends, so the uses it then keeps (`keep_batch`) are within the limits.
        Nothing is written here."""
        if not wanted:
            return []
        typed = [code for code, _ in wanted]
        found = await _by_code(uow.connection, typed)
        # A single-use code is locked whatever its promotion: two buyers may race for it.
        singles = await _single_codes(
            uow.connection, [c for c in typed if c.upper() not in found], lock=True
        )
        every = {p.id: p for p in [*found.values(), *(p for p, _ in singles.values())]}
        limited = [p.id for p in every.values() if p.usage_limit or p.per_customer_limit]
        if limited:
            # Read again under lock: the uses counted below must stay the latest.
            fresh = await _by_id(uow.connection, limited)
            found = {c: fresh.get(p.id, p) for c, p in found.items()}
            singles = {c: (fresh.get(p.id, p), h) for c, (p, h) in singles.items()}
        counted = Counter(
            await _uses_by_customer(
                uow.connection,
                [*found.values(), *(p for p, _ in singles.values())],
                [b for _, b in wanted],
            )
        )
        taken: Counter[str] = Counter()
        held: set[str] = set()
        now = self._clock.now()
        answers: list[Offer | ColonnadeError] = []
        for code, basket in wanted:
            try:
                promotion, single = _known(found, singles, code)
                if single is not None and (singles[single][1] is not None or single in held):
                    raise PromotionCodeUsed(single)
                domain.check(promotion, basket, now)
                mine = (promotion.id, basket.customer_id)
                domain.check_uses(
                    promotion,
                    promotion.used + taken[promotion.id],
                    counted[mine] if basket.customer_id is not None else 0,
                )
            except ColonnadeError as refused:
                answers.append(refused)
                continue
            taken[promotion.id] += 1
            counted[mine] += 1
            if single is not None:
                held.add(single)
            answers.append(_offer(promotion, basket, single))
        return answers

    async def keep_batch(
        self, uow: UnitOfWork, kept: Sequence[tuple[str, str | None, Offer, Money]]
    ) -> None:
        """Hold a use for each (checkout id, customer id, offer, total the buyer pays), after
        `decide_batch` in the same transaction."""
        if not kept:
            return
        now = self._clock.now()
        await insert_rows(
            uow,
            uses,
            [
                {
                    "checkout_id": checkout_id,
                    "promotion_id": offer.promotion_id,
                    "customer_id": customer_id,
                    "currency": total.currency,
                    "discount": offer.discount.amount,
                    "total": total.amount,
                    "used_at": now,
                    "code": offer.single_code,
                }
                for checkout_id, customer_id, offer, total in kept
            ],
        )
        await update_rows(
            uow,
            batch_codes,
            [
                {"code": offer.single_code, "checkout_id": checkout_id}
                for checkout_id, _, offer, _ in kept
                if offer.single_code is not None
            ],
            key="code",
        )
        counted = Counter(offer.promotion_id for _, _, offer, _ in kept if offer.counted)
        await _count(uow, counted, now)
        if counted:
            # Carts here see the uses left at once; other processes' within their keeping.
            uow.after_commit(self._kept.forget)
        codes = Counter(offer.code for _, _, offer, _ in kept)

        def count() -> None:
            for code, n in codes.items():
                PROMOTION_USES.labels(code).inc(n)

        uow.after_commit(count)

    async def forget_customer(self, customer_id: str, uow: UnitOfWork) -> None:
        """Cut an erased customer's uses loose from them: the uses and their amounts stay,
        naming nobody."""
        await uow.execute(
            update(uses).where(uses.c.customer_id == customer_id).values(customer_id=None)
        )

    async def give_back(self, checkout_id: str) -> None:
        """Give back the use a checkout holds, if any (a failed checkout, a cancelled order).
        Asked again, it finds nothing."""
        async with self._db.transaction() as uow:
            await self.give_back_batch(uow, [checkout_id])
            await uow.commit()

    async def give_back_batch(self, uow: UnitOfWork, checkout_ids: Sequence[str]) -> None:
        """`give_back` for these checkouts in the caller's transaction."""
        if not checkout_ids:
            return
        gone = (
            await uow.execute(
                delete(uses)
                .where(uses.c.checkout_id.in_(sorted(set(checkout_ids))))
                .returning(uses.c.promotion_id, uses.c.code)
            )
        ).all()
        returned = Counter(row.promotion_id for row in gone)
        freed = sorted(row.code for row in gone if row.code is not None)
        if freed:
            await uow.execute(
                update(batch_codes).where(batch_codes.c.code.in_(freed)).values(checkout_id=None)
            )
        await _count(uow, Counter({k: -n for k, n in returned.items()}), self._clock.now())
        if returned:
            uow.after_commit(self._kept.forget)

    async def _cached(self, conn: AsyncConnection, codes: Sequence[str]) -> dict[str, Promotion]:
        """The promotions with these codes, from those kept where they are."""
        wanted = sorted({code.upper() for code in codes})
        missing = [code for code in wanted if self._kept.get(code) is None]
        found = await _by_code(conn, missing) if missing else {}
        for code in missing:
            self._kept.put(code, found.get(code))
        for code in wanted:
            if code not in found and (kept := self._kept.get(code)) is not None:
                found[code] = kept
        return found


async def _by_code(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, Promotion]:
    """The promotions with these codes (as typed; malformed ones find nothing), by code."""
    wanted = sorted({code.upper() for code in codes})
    rows = await conn.execute(select(promotions).where(promotions.c.code.in_(wanted)))
    return {row.code: _promotion(row) for row in rows}


def _known(
    found: dict[str, Promotion], singles: dict[str, tuple[Promotion, str | None]], code: str
) -> tuple[Promotion, str | None]:
    """The promotion a code stands for, and the code when it is a single-use one."""
    normalized = domain.normalized_code(code)
    promotion = found.get(normalized)
    if promotion is not None:
        return promotion, None
    if normalized in singles:
        return singles[normalized][0], normalized
    raise UnknownPromotionCode(normalized)


async def _single_codes(
    conn: AsyncConnection, typed: Sequence[str], *, lock: bool = False
) -> dict[str, tuple[Promotion, str | None]]:
    """The single-use codes among these, with their promotion and the checkout that holds
    each (None: free). With `lock`, the codes' rows are locked in code order."""
    wanted = sorted({code.upper() for code in typed})
    if not wanted:
        return {}
    query = (
        select(batch_codes.c.code, batch_codes.c.checkout_id, promotions)
        .select_from(batch_codes.join(promotions, promotions.c.id == batch_codes.c.promotion_id))
        .where(batch_codes.c.code.in_(wanted))
        .order_by(batch_codes.c.code)
    )
    if lock:
        query = query.with_for_update(of=batch_codes)
    rows = await conn.execute(query)
    return {row[0]: (_promotion(row), row[1]) for row in rows}


async def _by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Promotion]:
    """These promotions, their rows locked in id order."""
    rows = await conn.execute(
        select(promotions)
        .where(promotions.c.id.in_(sorted(set(ids))))
        .order_by(promotions.c.id)
        .with_for_update()
    )
    return {row.id: _promotion(row) for row in rows}


async def _uses_by_customer(
    conn: AsyncConnection, found: Any, baskets: Sequence[Basket]
) -> dict[tuple[str, str | None], int]:
    """How often each of these customers has used each of these promotions that limits
    uses per customer."""
    limited = sorted(p.id for p in found if p.per_customer_limit is not None)
    customers = sorted({b.customer_id for b in baskets if b.customer_id is not None})
    if not limited or not customers:
        return {}
    rows = await conn.execute(
        select(uses.c.promotion_id, uses.c.customer_id, func.count())
        .where(uses.c.promotion_id.in_(limited), uses.c.customer_id.in_(customers))
        .group_by(uses.c.promotion_id, uses.c.customer_id)
    )
    return {(promotion_id, customer_id): int(n) for promotion_id, customer_id, n in rows}


async def _count(uow: UnitOfWork, change: Counter[str], now: datetime) -> None:
    """Move the held uses of these promotions by these numbers (only those with a usage
    limit count them on their row)."""
    moved = {promotion_id: n for promotion_id, n in change.items() if n}
    if not moved:
        return
    for promotion_id in sorted(moved):
        await uow.execute(
            update(promotions)
            .where(promotions.c.id == promotion_id, promotions.c.usage_limit.is_not(None))
            .values(used=promotions.c.used + moved[promotion_id], updated_at=now)
        )


def _offer(promotion: Promotion, basket: Basket, single: str | None = None) -> Offer:
    lines = domain.line_discounts(promotion, basket)
    return Offer(
        promotion_id=promotion.id,
        code=promotion.code,
        discount=Money(sum(lines.values()), basket.currency),
        lines={sku: off for sku, off in lines.items() if off},
        counted=promotion.usage_limit is not None,
        single_code=single,
    )


def _row(promotion: Promotion) -> dict[str, Any]:
    return {
        "id": promotion.id,
        "code": promotion.code,
        "title": promotion.title,
        "percent_off": promotion.percent_off,
        "amount_off": {c: m.amount for c, m in promotion.amount_off.items()},
        "min_subtotal": {c: m.amount for c, m in promotion.min_subtotal.items()},
        "markets": list(promotion.markets),
        "customers_only": promotion.customers_only,
        "usage_limit": promotion.usage_limit,
        "per_customer_limit": promotion.per_customer_limit,
        "used": promotion.used,
        "starts_at": promotion.starts_at,
        "ends_at": promotion.ends_at,
    }


def _promotion(row: Any) -> Promotion:
    return Promotion(
        id=row.id,
        code=row.code,
        title=row.title,
        percent_off=row.percent_off,
        amount_off={c: Money(int(a), c) for c, a in sorted(row.amount_off.items())},
        min_subtotal={c: Money(int(a), c) for c, a in sorted(row.min_subtotal.items())},
        markets=tuple(row.markets),
        customers_only=bool(row.customers_only),
        usage_limit=row.usage_limit,
        per_customer_limit=row.per_customer_limit,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        used=int(row.used),
    )
