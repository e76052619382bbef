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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

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
from colonnade.kernel.placements import Placements
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
    PromotionFirstOrderOnly,
    PromotionMinimumNotMet,
    PromotionNoMatchingItems,
    PromotionNotApplicable,
    PromotionNotCombinable,
    PromotionNotInCurrency,
    PromotionNotInMarket,
    PromotionNotStarted,
    PromotionQuantityNotMet,
    PromotionUsedUp,
    Target,
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
    "Passed",
    "Promotion",
    "PromotionCodeTaken",
    "PromotionCodeUsed",
    "PromotionCustomerLimitReached",
    "PromotionCustomersOnly",
    "PromotionExpired",
    "PromotionFirstOrderOnly",
    "PromotionMinimumNotMet",
    "PromotionNoMatchingItems",
    "PromotionNotApplicable",
    "PromotionNotCombinable",
    "PromotionNotFound",
    "PromotionNotInCurrency",
    "PromotionNotInMarket",
    "PromotionNotStarted",
    "PromotionQuantityNotMet",
    "PromotionReport",
    "PromotionUsedUp",
    "PromotionsService",
    "Taken",
    "Target",
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
    PromotionNoMatchingItems,
    PromotionQuantityNotMet,
    PromotionFirstOrderOnly,
)

# An automatic promotion refused for one of these is not shown on the cart: it is not
# offered to it at all (not running, another market or currency).
_NOT_OFFERED = (PromotionNotStarted, PromotionExpired, PromotionNotInMarket, PromotionNotInCurrency)

# Which of these customers have ordered before.
PastBuyers = Callable[[Sequence[str]], Awaitable[set[str]]]


# Codes of a batch are made this many to a transaction.
_CODES_AT_ONCE = 1000


class PromotionNotFound(NotFound):
    code = "promotion_not_found"

    def __init__(self, promotion_id: str) -> None:
        super().__init__(f"there is no promotion {promotion_id}", promotion_id=promotion_id)


@dataclass(frozen=True)
class NewPromotion:
    # None: an automatic promotion, applied to every cart that qualifies.
    code: str | None
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
    target: Target = field(default_factory=Target)
    buy_quantity: int | None = None
    get_quantity: int | None = None
    combines: bool = False
    first_order: bool = False


@dataclass(frozen=True)
class Taken:
    """One promotion that applies to a basket, and what it takes off in all."""

    promotion_id: str
    # None for an automatic promotion.
    code: str | None
    name: str
    discount: Money
    # Whether the promotion counts its uses on its row (it has a usage limit).
    counted: bool = False
    # The single-use code of a batch it takes; None for the promotion's own code.
    single_code: str | None = None


@dataclass(frozen=True)
class Passed:
    """A promotion that qualifies for the basket, or was entered, but takes nothing off it."""

    promotion_id: str | None
    code: str | None
    name: str
    reason: ColonnadeError


@dataclass(frozen=True)
class Offer:
    """What the promotions take off one basket: in all, from each line (by SKU), which
    applied, which did not and why, and why the code entered does not apply, if it does not."""

    discount: Money
    lines: dict[str, int]
    # The ids of the promotions that take something off each line, by SKU.
    line_promotions: dict[str, tuple[str, ...]]
    taken: tuple[Taken, ...] = ()
    passed: tuple[Passed, ...] = ()
    refusal: ColonnadeError | None = None


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
        placements: Placements | None = None,
        past_buyers: PastBuyers | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._changes = changes
        self._placements = placements
        self._past_buyers = past_buyers
        # Promotions by code (None: no such code), and the automatic ones not ended, for
        # carts; checkout reads them afresh.
        self._kept: Recent[str, Promotion | None] = Recent(reference_cache_seconds)
        self._automatic: Recent[str, tuple[Promotion, ...]] = Recent(reference_cache_seconds)
        if changes is not None:
            changes.listen(PromotionChanged.event_type, lambda *_: self._forget())

    def _forget(self) -> None:
        self._kept.forget()
        self._automatic.forget()

    def _committed(self, envelopes: list[Envelope]) -> None:
        self._forget()
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
            target=new.target,
            buy_quantity=new.buy_quantity,
            get_quantity=new.get_quantity,
            combines=new.combines,
            first_order=new.first_order,
        )
        async with self._db.transaction() as uow:
            if made.code is not None:
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
                raise PromotionCodeTaken(made.code or "") from None
            told = [uow.record(PromotionChanged(promotion_id=made.id, code=made.name))]
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
            told = [uow.record(PromotionChanged(promotion_id=found.id, code=found.name))]
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
                        _not_ended(now),
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
        if promotion.code is None:
            raise InvalidPromotion(
                f"the promotion {promotion.name} is automatic: it has no code to make codes of",
                field="promotion_id",
            )
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
        self, conn: AsyncConnection, wanted: Sequence[tuple[str | None, Basket]]
    ) -> list[Offer]:
        """What the promotions take off each (code entered or None, basket) now: the code's
        and the automatic ones the basket qualifies for, with why the code (`refusal`) or
        others do not apply. The check a shopper's cart makes, on the caller's connection.
        Nothing is held."""
        if not wanted:
            return []
        typed = [code for code, _ in wanted if code is not None]
        found = await self._cached(conn, typed)
        singles = await _single_codes(conn, [c for c in typed if c.upper() not in found])
        automatic = await self._running_automatic(conn)
        every = [*found.values(), *(p for p, _ in singles.values()), *automatic]
        baskets = await self._placed(every, [b for _, b in wanted])
        counted = await _uses_by_customer(conn, every, baskets)
        now = self._clock.now()
        return [
            _weigh(
                code,
                basket,
                found,
                singles,
                automatic,
                lambda p: p.used,
                lambda p, customer: counted.get((p.id, customer), 0),
                set(),
                now,
            )
            for (code, _), basket in zip(wanted, baskets, strict=True)
        ]

    # --- checkout -------------------------------------------------------------------------

    async def decide_batch(
        self, uow: UnitOfWork, wanted: Sequence[tuple[str | None, Basket]]
    ) -> list[Offer]:
        """Each (code entered or None, basket)'s offer at checkout, in arrival order, counting
        the uses the earlier ones in the batch take: the limited promotions' rows stay locked
        until the caller's transaction ends, so the uses it then keeps (`keep_batch`) are
        within the limits. An offer with a `refusal` refuses its checkout. Nothing is
        written here."""
        if not wanted:
            return []
        now = self._clock.now()
        typed = [code for code, _ in wanted if code is not None]
        if not typed and not await self._running_automatic(uow.connection):
            # No code, and no automatic promotion as carts here see them: nothing to read
            # (a promotion made in another process reaches this one's carts and checkouts
            # within the same few seconds).
            return [_weigh(None, b, {}, {}, (), _nothing, _nothing, set(), now) for _, b in wanted]
        found, automatic = await _candidates(uow.connection, typed, now)
        # A single-use code is locked whatever its promotion: two buyers may race for it.
        singles = await _single_codes(
            uow.connection, [c for c in typed if c.upper() not in found], lock=True
        )
        every = {p.id: p for p in [*found.values(), *(p for p, _ in singles.values()), *automatic]}
        limited = [p.id for p in every.values() if p.usage_limit or p.counted_per_customer]
        if limited:
            # Read again under lock: the uses counted below must stay the latest.
            fresh = await _by_id(uow.connection, limited)
            found = {c: fresh.get(p.id, p) for c, p in found.items()}
            singles = {c: (fresh.get(p.id, p), h) for c, (p, h) in singles.items()}
            automatic = tuple(fresh.get(p.id, p) for p in automatic)
        everyone = [*found.values(), *(p for p, _ in singles.values()), *automatic]
        baskets = await self._placed(everyone, [b for _, b in wanted])
        counted = Counter(await _uses_by_customer(uow.connection, everyone, baskets))
        taken: Counter[str] = Counter()
        held: set[str] = set()
        answers: list[Offer] = []
        for (code, _), basket in zip(wanted, baskets, strict=True):
            offer = _weigh(
                code,
                basket,
                found,
                singles,
                automatic,
                lambda p: p.used + taken[p.id],
                lambda p, customer: counted[(p.id, customer)] if customer is not None else 0,
                held,
                now,
            )
            if offer.refusal is None:
                for used in offer.taken:
                    taken[used.promotion_id] += 1
                    counted[(used.promotion_id, basket.customer_id)] += 1
                    if used.single_code is not None:
                        held.add(used.single_code)
            answers.append(offer)
        return answers

    async def keep_batch(
        self, uow: UnitOfWork, kept: Sequence[tuple[str, str | None, Offer, Money]]
    ) -> None:
        """Hold a use of each promotion an offer takes, for each (checkout id, customer id,
        offer, total the buyer pays), after `decide_batch` in the same transaction."""
        used = [
            (checkout_id, customer_id, taken, total)
            for checkout_id, customer_id, offer, total in kept
            for taken in offer.taken
        ]
        if not used:
            return
        now = self._clock.now()
        await insert_rows(
            uow,
            uses,
            [
                {
                    "checkout_id": checkout_id,
                    "promotion_id": taken.promotion_id,
                    "customer_id": customer_id,
                    "currency": total.currency,
                    "discount": taken.discount.amount,
                    "total": total.amount,
                    "used_at": now,
                    "code": taken.single_code,
                }
                for checkout_id, customer_id, taken, total in used
            ],
        )
        await update_rows(
            uow,
            batch_codes,
            [
                {"code": taken.single_code, "checkout_id": checkout_id}
                for checkout_id, _, taken, _ in used
                if taken.single_code is not None
            ],
            key="code",
        )
        counted = Counter(taken.promotion_id for _, _, taken, _ in used if taken.counted)
        await _count(uow, counted, now)
        if counted:
            # Carts here see the uses left at once; other processes' within their keeping.
            uow.after_commit(self._forget)
        names = Counter(taken.name for _, _, taken, _ in used)

        def count() -> None:
            for name, n in names.items():
                PROMOTION_USES.labels(name).inc(n)

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
            uow.after_commit(self._forget)

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

    async def _running_automatic(self, conn: AsyncConnection) -> tuple[Promotion, ...]:
        """The automatic promotions not ended, from those kept where they are."""
        kept = self._automatic.get("")
        if kept is None:
            kept = await _automatic(conn, self._clock.now())
            self._automatic.put("", kept)
        return kept

    async def _placed(
        self, candidates: Sequence[Promotion], baskets: Sequence[Basket]
    ) -> list[Basket]:
        """The baskets with their lines placed in the catalog when a promotion that may
        apply targets products or categories, and their customers marked when they have
        ordered before if one is for first orders (only then are the catalog and the orders
        asked)."""
        placed = list(baskets)
        if self._placements is not None and any(p.target.by_placement for p in candidates):
            placements = await self._placements(
                sorted({line.sku for basket in baskets for line in basket.lines})
            )
            placed = [basket.placed(placements) for basket in placed]
        customers = sorted({b.customer_id for b in placed if b.customer_id is not None})
        if self._past_buyers is not None and customers and any(p.first_order for p in candidates):
            returning = await self._past_buyers(customers)
            placed = [replace(b, returning=b.customer_id in returning) for b in placed]
        return placed


async def _by_code(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, Promotion]:
    """The promotions with these codes (as typed; malformed ones find nothing), by code."""
    wanted = sorted({code.upper() for code in codes})
    rows = await conn.execute(select(promotions).where(promotions.c.code.in_(wanted)))
    return {row.code: _promotion(row) for row in rows}


_AUTOMATIC = promotions.c.code.is_(None)


def _not_ended(now: datetime) -> ColumnElement[bool]:
    return promotions.c.ends_at.is_(None) | (promotions.c.ends_at > now)


async def _automatic(conn: AsyncConnection, now: datetime) -> tuple[Promotion, ...]:
    """The automatic promotions not ended by `now` (those not started are weighed, and
    passed over, by their window)."""
    rows = await conn.execute(
        select(promotions).where(_AUTOMATIC, _not_ended(now)).order_by(promotions.c.id)
    )
    return tuple(_promotion(row) for row in rows)


async def _candidates(
    conn: AsyncConnection, codes: Sequence[str], now: datetime
) -> tuple[dict[str, Promotion], tuple[Promotion, ...]]:
    """In one read: the promotions with these codes, by code, and the automatic ones not
    ended by `now`."""
    wanted = sorted({code.upper() for code in codes})
    rows = await conn.execute(
        select(promotions)
        .where(promotions.c.code.in_(wanted) | (_AUTOMATIC & _not_ended(now)))
        .order_by(promotions.c.id)
    )
    found = [_promotion(row) for row in rows]
    return (
        {p.code: p for p in found if p.code is not None},
        tuple(p for p in found if p.code is None),
    )


def _nothing(*_: object) -> int:
    return 0


def _weigh(
    code: str | None,
    basket: Basket,
    found: dict[str, Promotion],
    singles: dict[str, tuple[Promotion, str | None]],
    automatic: Sequence[Promotion],
    used: Callable[[Promotion], int],
    used_by: Callable[[Promotion, str | None], int],
    held: set[str],
    now: datetime,
) -> Offer:
    """What the code entered (if any) and the automatic promotions take off the basket,
    given the uses counted so far (`used`, `used_by` a customer) and the single-use codes
    already held in this batch."""
    eligible: list[Promotion] = []
    passed: list[Passed] = []
    refusal: ColonnadeError | None = None
    entered: Promotion | None = None
    single: str | None = None
    if code is not None:
        try:
            entered, single = _known(found, singles, code)
            if single is not None and (singles[single][1] is not None or single in held):
                raise PromotionCodeUsed(single)
            domain.check(entered, basket, now)
            domain.check_uses(entered, used(entered), used_by(entered, basket.customer_id))
            eligible.append(entered)
        except ColonnadeError as refused:
            refusal = refused
            passed.append(
                Passed(
                    None if entered is None else entered.id,
                    code.upper(),
                    code.upper() if entered is None else entered.name,
                    refused,
                )
            )
    for promotion in automatic:
        try:
            domain.check(promotion, basket, now)
            domain.check_uses(promotion, used(promotion), used_by(promotion, basket.customer_id))
        except _NOT_OFFERED:
            continue
        except ColonnadeError as refused:
            passed.append(Passed(promotion.id, None, promotion.name, refused))
            continue
        eligible.append(promotion)
    choice = domain.choose(eligible, basket)
    passed.extend(Passed(p.id, p.code, p.name, why) for p, why in choice.declined)
    lines = {sku: off for sku, off in choice.line_discounts().items() if off}
    return Offer(
        discount=Money(sum(lines.values()), basket.currency),
        lines=lines,
        line_promotions={sku: ids for sku, ids in choice.line_promotions().items() if ids},
        taken=tuple(
            Taken(
                promotion_id=a.promotion.id,
                code=a.promotion.code,
                name=a.promotion.name,
                discount=Money(a.total, basket.currency),
                counted=a.promotion.usage_limit is not None,
                single_code=single if a.promotion is entered else None,
            )
            for a in choice.applied
        ),
        passed=tuple(passed),
        refusal=refusal,
    )


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
    limited = sorted(p.id for p in found if p.counted_per_customer)
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
        "target": None if promotion.target.everything else promotion.target.as_dict(),
        "buy_quantity": promotion.buy_quantity,
        "get_quantity": promotion.get_quantity,
        "combines": promotion.combines,
        "first_order": promotion.first_order,
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
        target=Target(**{k: tuple(v) for k, v in row.target.items()}) if row.target else Target(),
        buy_quantity=row.buy_quantity,
        get_quantity=row.get_quantity,
        combines=bool(row.combines),
        first_order=bool(row.first_order),
    )
