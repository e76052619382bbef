"""The batched card purchase: what most checkouts are, at the cost of a few statements each.

A card checkout meets the database twice, each time in a batch with the checkouts that
arrived meanwhile (kernel.batching), and the provider once, alone:

1. **Hold** (one transaction for the batch): read the carts, claim the Idempotency-Keys,
   quote, weigh each cart's promotion code again and hold its use, reserve the stock and
   write each payment as `authorizing`. A refusal (sold out, empty cart, unpriced SKU, a
   code that ended or ran out) is that checkout's answer, stored for its key.
2. **Charge** (no transaction open): one provider call authorizes and captures.
3. **Settle** (one transaction for the batch): sell the stock, place the orders paid, record
   the charges, close the carts and store every answer; a decline gives its stock, and its
   promotion's use, back.

A paid card checkout publishes only its order's OrderPlaced and OrderPaid (with the cart's
CartUpdated, three events a purchase): they carry the checkout's id, so the saga's own
CheckoutCompleted would say nothing more. A refused one publishes CheckoutFailed.

Each module writes its own tables through its own batch call on this unit of work, and the
rules of who gets what are the modules' pure functions. One buyer's refusal never fails a
neighbour: refusals are answers, and a checkout that cannot be settled with the others (its
reservation expired under a slow provider, say) is taken out of the batch, the batch runs
again without it, and it is undone alone by the saga's compensation.

A crash between the steps leaves a `started` checkout whose stock and payment recovery finds
by the checkout's id and gives back (a charge whose answer was lost is refunded), so nothing
is kept without an order; a 201 is only ever sent after step 3 committed.

With inventory in a process (and a database) of its own, stock cannot be in these
transactions: it is held by one call per batch right after step 1 commits, and sold by one
call per batch at the end of step 3, before it commits (`StockKeeper.hold`, `.settle`, each
a transaction over there). A checkout whose stock was refused goes to step 3 uncharged, for
its payment and promotion use to be given back with the batch's. What a crash between the
two sides leaves is given back by the checkout's id, as above: held stock released, and
stock sold over there for a checkout that placed no order here returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import structlog

from colonnade.kernel.batching import Batcher, Exclude, Submitted
from colonnade.kernel.bulk import insert_rows, update_rows
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.metrics import CHECKOUTS, HOLD_RETRIES
from colonnade.kernel.money import Money
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.cart.service import CartService, CartSnapshot, CartStatus
from colonnade.modules.checkout.answers import count_failure, failure_body, order_body, step_span
from colonnade.modules.checkout.domain import (
    CartEmpty,
    CartNotOpen,
    CheckoutInterrupted,
    NothingToCharge,
    Outcome,
    PaymentRefused,
    Step,
    TotalChanged,
)
from colonnade.modules.checkout.events import CheckoutFailed
from colonnade.modules.checkout.ports import Prices, StockKeeper, Titles
from colonnade.modules.checkout.schema import checkouts
from colonnade.modules.inventory.service import InventoryService, Reservation, StockMoved
from colonnade.modules.orders.service import NewOrder, OrderLine, OrdersService, PlacedOrder
from colonnade.modules.payments.service import Payment, PaymentsService, ProviderOutcome
from colonnade.modules.pricing.service import Quote
from colonnade.modules.promotions.service import Basket, Offer, PromotionsService

log = structlog.get_logger(__name__)
T = TypeVar("T")


# A cart, or why a batch could not have it.
_Found = TypeVar("_Found", CartSnapshot, CartSnapshot | ColonnadeError)


@dataclass(frozen=True)
class CardCheckout:
    """One card checkout as the client asked for it."""

    checkout_id: str
    cart_id: str
    key: str
    fingerprint: str
    email: str
    shipping_address: dict[str, str]
    token: str
    customer_id: str | None
    # Bought with in place of the cart's code.
    promotion_code: str | None = None
    # The total the shopper was shown: any other total refuses the checkout.
    expected_total: Money | None = None


@dataclass(frozen=True)
class _Held:
    asked: CardCheckout
    cart: CartSnapshot
    quote: Quote
    # None until inventory elsewhere holds it.
    reservation: Reservation | None
    payment: Payment
    # What the cart's promotion code took off, when it holds one.
    offer: Offer | None = None
    # Its SKUs' titles in its market's language, for its order's lines.
    titles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _NotHeld:
    """A checkout whose stock inventory elsewhere refused (`answered`), or that got no
    answer (then its stock may be held over there, and the compensation finds it)."""

    held: _Held
    error: ColonnadeError
    answered: bool


@dataclass(frozen=True)
class _Charged:
    held: _Held
    # None: never charged, its stock was refused.
    outcome: ProviderOutcome | None
    refusal: ColonnadeError | None = None


class _Repeat:
    """The key was claimed before (or by an earlier checkout in the same batch)."""


_REPEAT = _Repeat()


# Give back what a checkout of a cart in this market holds (its stock, its payment) and store
# its refusal.
Undo = Callable[
    [CardCheckout, str, Reservation | None, Payment, ColonnadeError], Awaitable[Outcome]
]
# The first answer to a key that was used before.
Repeat = Callable[[str, str], Awaitable[Outcome]]


class CardPurchases:
    def __init__(
        self,
        db: Database,
        *,
        carts: CartService,
        catalog: Titles,
        inventory: InventoryService,
        pricing: Prices,
        promotions: PromotionsService,
        payments: PaymentsService,
        orders: OrdersService,
        clock: Clock,
        undo: Undo,
        repeat: Repeat,
        stock: StockKeeper | None = None,
    ) -> None:
        self._db = db
        self._carts = carts
        self._catalog = catalog
        self._inventory = inventory
        self._pricing = pricing
        self._promotions = promotions
        self._payments = payments
        self._orders = orders
        self._clock = clock
        self._undo = undo
        self._repeat = repeat
        # Inventory in another process: stock is held and sold around this process's
        # transactions instead of in them.
        self._stock = stock
        self._holding = Batcher[CardCheckout, _Held | _NotHeld | _Repeat | Outcome](
            "hold", self._hold
        )
        self._settling = Batcher[_Charged, Outcome]("settle", self._settle)

    async def buy(self, asked: CardCheckout) -> Outcome:
        with step_span("reserve", asked.checkout_id):
            held = await self._holding.submit(asked)
        if isinstance(held, _Repeat):
            return await self._repeat(asked.key, asked.fingerprint)
        if isinstance(held, Outcome):
            return held
        if isinstance(held, _NotHeld):
            return await self._not_held(held)
        try:
            return await self._charge_and_settle(held)
        except Exception:
            # Unexpected (the database went away): undo what was done so nothing stays
            # held, then let it surface.
            log.exception("checkout.crashed", checkout_id=asked.checkout_id)
            await self._undo(
                asked, held.cart.market, held.reservation, held.payment, CheckoutInterrupted()
            )
            raise

    async def _not_held(self, not_held: _NotHeld) -> Outcome:
        held = not_held.held
        if not_held.answered:
            # Refused for sure: given back with the settling batch, not alone.
            with step_span("settle", held.asked.checkout_id):
                return await self._settling.submit(_Charged(held, None, refusal=not_held.error))
        return await self._undo(held.asked, held.cart.market, None, held.payment, not_held.error)

    async def _charge_and_settle(self, held: _Held) -> Outcome:
        asked = held.asked
        try:
            with step_span("charge", asked.checkout_id):
                outcome = await self._payments.charge(held.payment, asked.token)
        except ColonnadeError as error:
            return await self._undo(asked, held.cart.market, held.reservation, held.payment, error)
        try:
            with step_span("settle", asked.checkout_id):
                return await self._settling.submit(_Charged(held, outcome))
        except ColonnadeError as error:  # taken out of its batch: a module refused it
            return await self._undo(asked, held.cart.market, held.reservation, held.payment, error)

    # --- 1. hold ----------------------------------------------------------------------------

    async def _hold(
        self, batch: Sequence[Submitted[CardCheckout]]
    ) -> list[_Held | _NotHeld | _Repeat | Outcome | Exception]:
        """Hold the batch, deciding on stock first without locking it (see
        `InventoryService.reserve_batch`); when other buyers moved that stock meanwhile, the
        transaction is abandoned and run again, locking first. With inventory elsewhere,
        its stock is held once this batch committed here."""
        try:
            answers = await self._hold_once(batch, optimistic=True)
        except StockMoved:
            HOLD_RETRIES.inc()
            answers = await self._hold_once(batch, optimistic=False)
        answers = await self._titled(answers)
        if self._stock is None:
            return list(answers)
        return await _hold_elsewhere(self._stock, answers)

    async def _titled(
        self, answers: list[_Held | _Repeat | Outcome | Exception]
    ) -> list[_Held | _Repeat | Outcome | Exception]:
        """The held checkouts with their titles: one ask of the catalog per language in the
        batch. A catalog that does not answer (in another process, or its database away)
        leaves the orders' lines named by their SKUs rather than the purchases undone."""
        skus: dict[str, set[str]] = {}
        for answer in answers:
            if isinstance(answer, _Held):
                skus.setdefault(answer.quote.locale, set()).update(s for s, _ in answer.cart.lines)
        titles: dict[str, dict[str, str]] = {}
        for locale, wanted in skus.items():
            try:
                titles[locale] = await self._catalog.titles_for(sorted(wanted), locale)
            except Exception:
                log.exception("checkout.titles_unanswered", locale=locale)
                titles[locale] = {}
        return [
            replace(a, titles=titles[a.quote.locale]) if isinstance(a, _Held) else a
            for a in answers
        ]

    async def _hold_once(
        self, batch: Sequence[Submitted[CardCheckout]], *, optimistic: bool
    ) -> list[_Held | _Repeat | Outcome | Exception]:
        asked = [submitted.request for submitted in batch]
        answers: list[_Held | _Repeat | Outcome | Exception | None] = [None] * len(asked)
        refused: dict[int, ColonnadeError] = {}
        async with self._db.transaction() as uow:
            carts = [
                with_code(cart, a.promotion_code)
                for cart, a in zip(
                    await self._carts.snapshot_batch(
                        uow.connection, [(a.cart_id, a.customer_id) for a in asked]
                    ),
                    asked,
                    strict=True,
                )
            ]
            claimed = await self._claim_keys(uow, asked, carts, answers)
            going: list[int] = []
            for i in claimed:
                cart = carts[i]
                assert isinstance(cart, CartSnapshot)
                if cart.status != CartStatus.OPEN:
                    refused[i] = CartNotOpen(cart.id, cart.status.value)
                elif not cart.lines:
                    refused[i] = CartEmpty(cart.id)
                else:
                    going.append(i)
            quoted = _kept(
                going,
                await self._pricing.quote_batch(
                    uow.connection, [(_cart(carts[i]).market, _lines(carts[i])) for i in going]
                ),
                refused,
            )
            offers = await take_codes_off(
                self._promotions,
                self._pricing,
                uow,
                [(i, _cart(carts[i])) for i in quoted],
                quoted,
                refused,
                {i: asked[i].expected_total for i in quoted},
            )
            reserved: dict[int, Reservation | None] = dict.fromkeys(quoted)
            if self._stock is None:
                reserved = dict(
                    _kept(
                        list(quoted),
                        await self._inventory.reserve_batch(
                            uow,
                            [(asked[i].checkout_id, _lines(carts[i])) for i in quoted],
                            optimistic=optimistic,
                        ),
                        refused,
                    )
                )
            await self._promotions.keep_batch(
                uow,
                [
                    (asked[i].checkout_id, _cart(carts[i]).customer_id, offers[i], quoted[i].total)
                    for i in reserved
                    if i in offers
                ],
            )
            payments = await self._payments.open_charges(
                uow, [(asked[i].checkout_id, quoted[i].total) for i in reserved]
            )
            for (i, reservation), payment in zip(reserved.items(), payments, strict=True):
                answers[i] = _Held(
                    asked[i], _cart(carts[i]), quoted[i], reservation, payment, offers.get(i)
                )
            rows = []
            for i, error in refused.items():
                answers[i] = Outcome(error.status, failure_body(error, asked[i].checkout_id))
                cart = carts[i]
                market = cart.market if isinstance(cart, CartSnapshot) else None
                _record_failure(uow, batch[i], asked[i], market, error, self._clock.now())
                rows.append(_refusal_row(asked[i], error))
            await _store_answers(uow, rows, self._clock)
            await uow.commit()
        for error in refused.values():
            count_failure(error)
        return [a if a is not None else CheckoutInterrupted() for a in answers]

    async def _claim_keys(
        self,
        uow: UnitOfWork,
        asked: list[CardCheckout],
        carts: Sequence[CartSnapshot | ColonnadeError],
        answers: list[Any],
    ) -> list[int]:
        """Claim each key by inserting its checkout, all in one statement; a key claimed
        before, or twice in this batch, is a repeat. Another customer's cart, or none, is
        answered like today's single checkout: 404, nothing stored."""
        first: dict[str, int] = {}
        for i, (a, cart) in enumerate(zip(asked, carts, strict=True)):
            if isinstance(cart, ColonnadeError):
                answers[i] = cart
            elif a.key in first:
                answers[i] = _REPEAT
            else:
                first[a.key] = i
        if not first:
            return []
        now = self._clock.now()
        inserted = await insert_rows(
            uow,
            checkouts,
            [
                {
                    "id": asked[i].checkout_id,
                    "idempotency_key": key,
                    "fingerprint": asked[i].fingerprint,
                    "cart_id": asked[i].cart_id,
                    "step": Step.STARTED.value,
                    "created_at": now,
                    "updated_at": now,
                }
                for key, i in first.items()
            ],
            skip_conflicts_on=("idempotency_key",),
            returning="idempotency_key",
        )
        claimed = set(inserted)
        for key, i in first.items():
            if key not in claimed:
                answers[i] = _REPEAT
        return sorted(i for key, i in first.items() if key in claimed)

    # --- 3. settle --------------------------------------------------------------------------

    async def _settle(self, batch: Sequence[Submitted[_Charged]]) -> list[Outcome]:
        """Settle the batch. A checkout a module refuses here (its reservation expired under
        a slow provider, say) is taken out (Exclude) and the batch runs again without it:
        a refusal in one module must not leave another module's writes behind. With
        inventory elsewhere, its stock is sold last, before the commit: a sale over there
        whose transaction here then fails is undone by the compensation (see the top)."""
        charged = dict(enumerate(s.request for s in batch))
        paid = [i for i, c in charged.items() if c.outcome is not None and c.outcome.approved]
        declined = [
            i for i, c in charged.items() if c.outcome is not None and not c.outcome.approved
        ]
        uncharged = [i for i, c in charged.items() if c.outcome is None]
        answers: dict[int, Outcome] = {}
        async with self._db.transaction() as uow:
            # Before the stock: holding, promotions' rows are locked before inventory's.
            await self._promotions.give_back_batch(
                uow,
                [
                    charged[i].held.asked.checkout_id
                    for i in (*declined, *uncharged)
                    if charged[i].held.offer
                ],
            )
            if self._stock is None:
                sold = await self._inventory.settle_batch(
                    uow, _reservations(charged, paid), _reservations(charged, declined)
                )
                _exclude_refused(paid, sold)
            placed = await self._orders.place_paid_batch(
                uow, [(_new_order(charged[i]), charged[i].held.quote.total) for i in paid]
            )
            _exclude_refused(paid, placed)
            orders = {i: p for i, p in zip(paid, placed, strict=True) if isinstance(p, PlacedOrder)}
            charges = [i for i in charged if i not in uncharged]
            recorded = await self._payments.record_charges(
                uow,
                [
                    (c.held.payment, c.outcome, orders[i].order.id if i in orders else None)
                    for i in charges
                    if (c := charged[i]).outcome is not None
                ],
            )
            _exclude_refused(charges, recorded)
            await self._payments.drop_charges(uow, [charged[i].held.payment for i in uncharged])
            await self._carts.close_batch(uow, [charged[i].held.cart.id for i in paid])
            rows: list[dict[str, Any]] = []
            for i, c in charged.items():
                held = c.held
                if c.refusal is not None:
                    answers[i] = Outcome(
                        c.refusal.status, failure_body(c.refusal, held.asked.checkout_id)
                    )
                    _record_failure(
                        uow, batch[i], held.asked, held.cart.market, c.refusal, self._clock.now()
                    )
                    rows.append(_answer_row(held, Step.FAILED, answers[i], None, c.refusal))
                elif i in orders:
                    order = orders[i].order
                    body = order_body(order, orders[i].access_token, "card", held.asked.checkout_id)
                    answers[i] = Outcome(201, body)
                    rows.append(_answer_row(held, Step.COMPLETED, answers[i], order.id))
                else:
                    error = _declined(c)
                    answers[i] = Outcome(error.status, failure_body(error, held.asked.checkout_id))
                    _record_failure(
                        uow, batch[i], held.asked, held.cart.market, error, self._clock.now()
                    )
                    rows.append(_answer_row(held, Step.FAILED, answers[i], None, error))
            await _store_answers(uow, rows, self._clock)
            if self._stock is not None and (paid or declined):
                sold = await self._stock.settle(
                    _reservations(charged, paid), _reservations(charged, declined)
                )
                _exclude_refused(paid, sold)
            await uow.commit()
        for i, answer in answers.items():
            if answer.status == 201:
                CHECKOUTS.labels("paid").inc()
            else:
                count_failure(charged[i].refusal or _declined(charged[i]))
        return [answers[i] for i in range(len(batch))]


async def _hold_elsewhere(
    stock: StockKeeper, answers: list[_Held | _Repeat | Outcome | Exception]
) -> list[_Held | _NotHeld | _Repeat | Outcome | Exception]:
    """Hold the stock of the batch's checkouts that got this far, in one call to inventory
    elsewhere; a refusal there, or no answer, is noted on each checkout it concerns."""
    going = [i for i, answer in enumerate(answers) if isinstance(answer, _Held)]
    if not going:
        return list(answers)
    holding: list[_Held] = [a for a in answers if isinstance(a, _Held)]
    result: list[_Held | _NotHeld | _Repeat | Outcome | Exception] = list(answers)
    try:
        held = await stock.hold([(h.asked.checkout_id, list(h.cart.lines)) for h in holding])
    except Exception as failed:
        # Whether the stock is held over there is not known: each is undone alone.
        if not isinstance(failed, ColonnadeError):
            log.exception("checkout.hold_failed", checkouts=len(holding))
        unanswered = failed if isinstance(failed, ColonnadeError) else CheckoutInterrupted()
        for i, h in zip(going, holding, strict=True):
            result[i] = _NotHeld(h, unanswered, answered=False)
        return result
    for i, h, reservation in zip(going, holding, held, strict=True):
        result[i] = (
            _NotHeld(h, reservation, answered=True)
            if isinstance(reservation, ColonnadeError)
            else replace(h, reservation=reservation)
        )
    return result


async def take_codes_off(
    promotions: PromotionsService,
    pricing: Prices,
    uow: UnitOfWork,
    going: list[tuple[int, CartSnapshot]],
    quoted: dict[int, Quote],
    refused: dict[int, ColonnadeError],
    expected: Mapping[int, Money | None],
) -> dict[int, Offer]:
    """Weigh each cart's promotion code and the automatic promotions again, as of now,
    counting the uses the batch takes: a code that no longer applies refuses its checkout
    (and it is taken out of `quoted`); the others' quotes have their discount taken off. A
    cart that costs nothing is refused too, and so is one whose total is not the one its
    checkout `expected`. The card purchase's batches and the saga's single checkouts both
    price so."""
    weighed = [(i, cart) for i, cart in going if i in quoted]
    decided = await promotions.decide_batch(
        uow,
        [
            (
                cart.promotion_code,
                Basket.of(cart.market, quoted[i].currency, quoted[i].lines, cart.customer_id),
            )
            for i, cart in weighed
        ],
    )
    offers: dict[int, Offer] = {}
    for (i, _), offer in zip(weighed, decided, strict=True):
        if offer.refusal is not None:
            refused[i] = offer.refusal
            del quoted[i]
            continue
        offers[i] = offer
        if offer.lines:
            quoted[i] = pricing.discounted(quoted[i], offer.lines)
    # A card cannot be charged nothing: a cart free at its sale prices and discount is
    # refused before anything is held for it.
    for i, cart in going:
        if i not in quoted:
            continue
        total, shown = quoted[i].total, expected.get(i)
        if total.amount == 0:
            refused[i] = NothingToCharge(cart.id, total)
        elif shown is not None and shown != total:
            refused[i] = TotalChanged(cart.id, shown, total)
        else:
            continue
        del quoted[i]
        offers.pop(i, None)
    return offers


def with_code(cart: _Found, code: str | None) -> _Found:
    """The cart as a checkout that names a code buys it: with that code in place of its own."""
    if code is None or not isinstance(cart, CartSnapshot):
        return cart
    return replace(cart, promotion_code=code)


def _cart(found: CartSnapshot | ColonnadeError) -> CartSnapshot:
    assert isinstance(found, CartSnapshot)
    return found


def _lines(found: CartSnapshot | ColonnadeError) -> list[tuple[str, int]]:
    return list(_cart(found).lines)


def _kept(
    indexes: list[int], results: Sequence[T | ColonnadeError], refused: dict[int, ColonnadeError]
) -> dict[int, T]:
    """The checkouts whose result in this step is not a refusal, with it; refusals are noted."""
    kept: dict[int, T] = {}
    for i, result in zip(indexes, results, strict=True):
        if isinstance(result, ColonnadeError):
            refused[i] = result
        else:
            kept[i] = result
    return kept


def _reservations(charged: Mapping[int, _Charged], indexes: list[int]) -> list[Reservation]:
    found = [charged[i].held.reservation for i in indexes]
    return [r for r in found if r is not None]


def _declined(charged: _Charged) -> PaymentRefused:
    outcome = charged.outcome
    return PaymentRefused((outcome.decline_reason if outcome else None) or "declined")


def _exclude_refused(indexes: list[int], results: Sequence[object]) -> None:
    failed = {
        i: result
        for i, result in zip(indexes, results, strict=True)
        if isinstance(result, ColonnadeError)
    }
    if failed:
        raise Exclude(failed)


def _new_order(charged: _Charged) -> NewOrder:
    held = charged.held
    quote = held.quote
    by_line = held.offer.line_promotions if held.offer is not None else {}
    return NewOrder(
        checkout_id=held.asked.checkout_id,
        email=held.asked.email,
        customer_id=held.asked.customer_id,
        market=held.cart.market,
        currency=quote.total.currency,
        tax_inclusive=quote.tax_inclusive,
        lines=[
            OrderLine(
                sku=line.sku,
                title=held.titles.get(line.sku, line.sku),
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
                tax=line.tax,
                discount=line.discount,
                promotions=by_line.get(line.sku, ()),
            )
            for line in quote.lines
        ],
        shipping=Money.zero(quote.total.currency),
        shipping_address=held.asked.shipping_address,
        payment_id=held.payment.id,
    )


def _record_failure(
    uow: UnitOfWork,
    submitted: Submitted[Any],
    asked: CardCheckout,
    market: str | None,
    error: ColonnadeError,
    at: datetime,
) -> None:
    # In the buyer's own context, so the event carries that buyer's trace.
    submitted.context.run(
        uow.record, CheckoutFailed.of(asked.checkout_id, asked.cart_id, market, error, at)
    )


def _refusal_row(asked: CardCheckout, error: ColonnadeError) -> dict[str, Any]:
    return {
        "id": asked.checkout_id,
        "step": Step.FAILED.value,
        "response_status": error.status,
        "response_body": failure_body(error, asked.checkout_id),
        "error": error.detail,
        "reservation_id": None,
        "payment_id": None,
        "order_id": None,
    }


def _answer_row(
    held: _Held,
    step: Step,
    answer: Outcome,
    order_id: str | None,
    error: ColonnadeError | None = None,
) -> dict[str, Any]:
    return {
        "id": held.asked.checkout_id,
        "step": step.value,
        "response_status": answer.status,
        "response_body": answer.body,
        "error": error.detail if error else None,
        "reservation_id": held.reservation.id if held.reservation else None,
        "payment_id": held.payment.id,
        "order_id": order_id,
    }


async def _store_answers(uow: UnitOfWork, rows: list[dict[str, Any]], clock: Clock) -> None:
    """Each checkout's answer and what it holds, kept for its key: one statement. Each row
    is this batch's own (claimed by it): no other batch waits on them."""
    now = clock.now()
    await update_rows(uow, checkouts, [{**row, "updated_at": now} for row in rows])
