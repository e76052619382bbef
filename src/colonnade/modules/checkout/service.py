"""Checkout: a card checkout goes through the batched purchase (card_purchase.py); gift
cards and bank transfers through the saga here: reserve -> quote (with the cart's promotion
code, whose use is held) -> authorize -> place -> capture -> commit.

Each saga step is a local transaction in the module that owns it; this module remembers, per
Idempotency-Key, how far a checkout got. A failure runs the compensations of the steps
before it (release stock, void the authorization, cancel the order); a checkout interrupted
by a crash is finished or undone by `recover`, so no money is kept without an order and no
stock without a buyer. Both paths share the compensation and the recovery. No transaction
is open while the payment provider is called.

A checkout row holds nothing personal: the request is kept as a keyed digest (to recognise
a retry), the stored answer carries ids, amounts and lines but not the buyer's e-mail or
address, and the e-mail lives only, encrypted, in the order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from colonnade.kernel.clock import Clock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import CHECKOUTS
from colonnade.kernel.money import Money
from colonnade.kernel.remote import on_behalf_of
from colonnade.modules.cart.service import CartService, CartSnapshot, CartStatus
from colonnade.modules.checkout.answers import (
    count_failure,
    failure_body,
    order_body,
    step_span,
)
from colonnade.modules.checkout.card_purchase import (
    CardCheckout,
    CardPurchases,
    take_codes_off,
    with_code,
)
from colonnade.modules.checkout.domain import (
    FINISHED,
    CartEmpty,
    CartNotOpen,
    CheckoutInProgress,
    CheckoutInterrupted,
    GiftCardShort,
    IdempotencyKeyReused,
    NothingToCharge,
    NothingToRefund,
    Outcome,
    PaymentRefused,
    Step,
    canonical_request,
    checked_key,
)
from colonnade.modules.checkout.events import CheckoutCompleted, CheckoutFailed
from colonnade.modules.checkout.ports import Prices, StockKeeper, Titles
from colonnade.modules.checkout.schema import checkouts
from colonnade.modules.inventory.service import InventoryService, Reservation
from colonnade.modules.orders.service import NewOrder, Order, OrderLine, OrdersService, OrderStatus
from colonnade.modules.payments.service import (
    Payment,
    PaymentsService,
    PaymentStatus,
    ProviderUnavailable,
)
from colonnade.modules.pricing.service import Quote
from colonnade.modules.promotions.service import Offer, PromotionsService

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Keyed, so the stored digest of a request cannot be matched against a guessed e-mail.
_REQUEST_DIGEST = "checkout.request"

__all__ = ["CheckoutRequest", "CheckoutService", "Outcome", "StockKeeper"]


@dataclass(frozen=True)
class CheckoutRequest:
    email: str
    shipping_address: dict[str, str]
    payment_method: str
    payment_token: str | None = None
    gift_card_code: str | None = None
    customer_id: str | None = None
    # Bought with in place of the cart's code.
    promotion_code: str | None = None
    # The total the shopper was shown: any other total refuses the checkout (total_changed).
    expected_total: Money | None = None

    def as_dict(self) -> dict[str, Any]:
        asked: dict[str, Any] = {
            "email": self.email,
            "shipping_address": self.shipping_address,
            "payment": {
                "method": self.payment_method,
                "token": self.payment_token,
                "gift_card_code": self.gift_card_code,
            },
            "customer_id": self.customer_id,
        }
        # Only when given: a key stored before checkouts took codes keeps its digest.
        if self.promotion_code is not None:
            asked["promotion_code"] = self.promotion_code
        if self.expected_total is not None:
            asked["expected_total"] = [self.expected_total.amount, self.expected_total.currency]
        return asked


class _Failed(Exception):
    """A step ended the checkout; `error` is what the client is told."""

    def __init__(self, error: ColonnadeError) -> None:
        super().__init__(error.detail)
        self.error = error


@dataclass
class _Progress:
    id: str
    cart_id: str
    step: Step
    reservation_id: str | None = None
    payment_id: str | None = None
    order_id: str | None = None
    # The cart's market, where this process read the cart (not when recovering a checkout).
    market: str | None = None
    # The card payment for what a gift card left, once this process knows whether there is one.
    rest_payment_id: str | None = None
    rest_known: bool = False

    @property
    def rest_reference(self) -> str:
        """The card payment's reference when a gift card pays only part (split tender)."""
        return f"{self.id}:card"


class CheckoutService:
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
        keyring: Keyring,
        clock: Clock,
        wait_for_first: timedelta = timedelta(seconds=20),
        stock: StockKeeper | None = None,
    ) -> None:
        self._db = db
        self._carts = carts
        self._catalog = catalog
        # The reservations: inventory here, or `stock` in another process.
        self._stock: StockKeeper = stock or inventory
        self._pricing = pricing
        self._promotions = promotions
        self._payments = payments
        self._orders = orders
        self._keyring = keyring
        self._clock = clock
        self._wait_for_first = wait_for_first
        # Checkouts this process is running now: recovery must never undo a live one.
        self._running: set[str] = set()
        self._cards = CardPurchases(
            db,
            carts=carts,
            catalog=catalog,
            inventory=inventory,
            pricing=pricing,
            promotions=promotions,
            payments=payments,
            orders=orders,
            clock=clock,
            undo=self._undo_card,
            repeat=self._first_outcome,
            stock=stock,
        )

    async def check_out(
        self, cart_id: str, idempotency_key: str | None, request: CheckoutRequest
    ) -> Outcome:
        """Buy what is in the cart. The same key returns the first outcome, charging nothing."""
        key = checked_key(idempotency_key)
        print_ = self._keyring.blind_index(
            canonical_request(cart_id, request.as_dict()), context=_REQUEST_DIGEST
        )
        if request.payment_method == "card" and request.payment_token is not None:
            return await self._buy_by_card(cart_id, key, print_, request, request.payment_token)
        # Before anything is stored: another customer's cart is answered like no cart. What
        # the cart holds now is what this checkout buys.
        cart = with_code(
            await self._carts.snapshot(cart_id, request.customer_id), request.promotion_code
        )
        progress = await self._begin(key, print_, cart_id)
        if progress is None:
            return await self._first_outcome(key, print_)
        progress.market = cart.market
        self._running.add(progress.id)
        # Its steps in other processes carry the buyer's key, as its steps here do.
        with on_behalf_of(key):
            try:
                body = await self._run(progress, request, cart)
            except _Failed as failed:
                await self._compensate(progress)
                return await self._finish_failed(progress, failed.error)
            except Exception:
                # Unexpected: undo what was done so nothing stays held, then let it surface.
                log.exception("checkout.crashed", checkout_id=progress.id)
                await self._compensate(progress)
                await self._finish_failed(progress, CheckoutInterrupted())
                raise
            finally:
                self._running.discard(progress.id)
        return await self._finish_completed(progress, body)

    async def _buy_by_card(
        self, cart_id: str, key: str, print_: str, request: CheckoutRequest, token: str
    ) -> Outcome:
        """Most checkouts: one card pays all, captured at once, in batches (card_purchase)."""
        asked = CardCheckout(
            checkout_id=new_id(),
            cart_id=cart_id,
            key=key,
            fingerprint=print_,
            email=request.email,
            shipping_address=request.shipping_address,
            token=token,
            customer_id=request.customer_id,
            promotion_code=request.promotion_code,
            expected_total=request.expected_total,
        )
        self._running.add(asked.checkout_id)
        try:
            return await self._cards.buy(asked)
        finally:
            self._running.discard(asked.checkout_id)

    async def _undo_card(
        self,
        asked: CardCheckout,
        market: str,
        reservation: Reservation | None,
        payment: Payment,
        error: ColonnadeError,
    ) -> Outcome:
        """A card checkout that got no further than its charge: give back what it holds,
        alone, through the saga's own compensation, and store its refusal."""
        progress = _Progress(
            id=asked.checkout_id,
            cart_id=asked.cart_id,
            step=Step.STARTED,
            reservation_id=reservation.id if reservation else None,
            payment_id=payment.id,
            market=market,
        )
        await self._compensate(progress)
        return await self._finish_failed(progress, error)

    async def _begin(self, key: str, print_: str, cart_id: str) -> _Progress | None:
        now = self._clock.now()
        progress = _Progress(id=new_id(), cart_id=cart_id, step=Step.STARTED)
        async with self._db.transaction() as uow:
            try:
                await uow.execute(
                    insert(checkouts).values(
                        id=progress.id,
                        idempotency_key=key,
                        fingerprint=print_,
                        cart_id=cart_id,
                        step=Step.STARTED.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
            except IntegrityError:
                return None
            await uow.commit()
        return progress

    async def _first_outcome(self, key: str, print_: str) -> Outcome:
        """Answer a repeated key: the first request's outcome, once it has one."""
        deadline = asyncio.get_running_loop().time() + self._wait_for_first.total_seconds()
        delay = 0.02
        while True:
            async with self._db.reading() as conn:
                row = (
                    await conn.execute(
                        select(
                            checkouts.c.fingerprint,
                            checkouts.c.step,
                            checkouts.c.response_status,
                            checkouts.c.response_body,
                        ).where(checkouts.c.idempotency_key == key)
                    )
                ).one()
            if row.fingerprint != print_:
                raise IdempotencyKeyReused()
            if Step(row.step) in FINISHED:
                return Outcome(row.response_status, row.response_body)
            if asyncio.get_running_loop().time() > deadline:
                raise CheckoutInProgress()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _run(
        self, progress: _Progress, request: CheckoutRequest, cart: CartSnapshot
    ) -> dict[str, Any]:
        if cart.status != CartStatus.OPEN:
            raise _Failed(CartNotOpen(cart.id, cart.status.value))
        if not cart.lines:
            raise _Failed(CartEmpty(cart.id))
        lines = [(sku, quantity) for sku, quantity in cart.lines]

        reservation = await self._step(
            "reserve", progress.id, self._stock.reserve(progress.id, lines)
        )
        progress.reservation_id = reservation.id

        quote = await self._step("quote", progress.id, self._pricing.quote(cart.market, lines))
        quote, offer = await self._step(
            "promote",
            progress.id,
            self._hold_promotion(progress.id, cart, quote, request.expected_total),
        )
        if quote.total.amount == 0:
            raise _Failed(NothingToCharge(cart.id, quote.total))
        titles = await self._catalog.titles_for([sku for sku, _ in lines], quote.locale)

        # With a gift card, a card token (if given) pays what the gift card does not cover.
        split = request.payment_method == "gift_card"
        payment = await self._step(
            "authorize",
            progress.id,
            self._payments.authorize(
                progress.id,
                quote.total,
                request.payment_method,
                token=None if split else request.payment_token,
                gift_card_code=request.gift_card_code,
            ),
        )
        progress.payment_id = payment.id
        if payment.status == PaymentStatus.FAILED:
            raise _Failed(PaymentRefused(payment.decline_reason or "declined"))
        if payment.remaining.amount > 0:
            if request.payment_token is None:
                raise _Failed(GiftCardShort(payment.remaining))
            rest = await self._step(
                "authorize",
                progress.id,
                self._payments.authorize(
                    progress.rest_reference,
                    payment.remaining,
                    "card",
                    token=request.payment_token,
                ),
            )
            if rest.status == PaymentStatus.FAILED:
                raise _Failed(PaymentRefused(rest.decline_reason or "declined"))
            progress.rest_payment_id = rest.id
        progress.rest_known = True

        placed = await self._step(
            "place",
            progress.id,
            self._orders.place(
                NewOrder(
                    checkout_id=progress.id,
                    email=request.email,
                    customer_id=request.customer_id,
                    market=cart.market,
                    currency=quote.total.currency,
                    tax_inclusive=quote.tax_inclusive,
                    lines=[
                        OrderLine(
                            sku=line.sku,
                            title=titles.get(line.sku, line.sku),
                            quantity=line.quantity,
                            unit_price=line.unit_price,
                            line_total=line.line_total,
                            tax=line.tax,
                            discount=line.discount,
                            promotions=offer.line_promotions.get(line.sku, ()),
                        )
                        for line in quote.lines
                    ],
                    shipping=Money.zero(quote.total.currency),
                    shipping_address=request.shipping_address,
                    payment_id=payment.id,
                )
            ),
        )
        progress.order_id = placed.order.id
        # The one step noted before the end: from here a crash is finished, not undone. Before
        # it, recovery finds what was done (stock, payment, order) by the checkout's id.
        await self._advance(
            progress,
            Step.PLACED,
            reservation_id=reservation.id,
            payment_id=payment.id,
            order_id=placed.order.id,
        )

        awaiting_transfer = payment.status == PaymentStatus.PENDING
        await self._settle(progress, awaiting_transfer)
        status = OrderStatus.PLACED if awaiting_transfer else OrderStatus.PAID
        return order_body(
            replace(placed.order, status=status),
            placed.access_token,
            payment.method.value,
            progress.id,
        )

    async def _hold_promotion(
        self, checkout_id: str, cart: CartSnapshot, quote: Quote, expected: Money | None
    ) -> tuple[Quote, Offer]:
        """Weigh the cart's code and the automatic promotions again and hold their uses;
        the quote with their discount (refused when its total is not the one expected)."""
        quoted = {0: quote}
        refused: dict[int, ColonnadeError] = {}
        async with self._db.transaction() as uow:
            offers = await take_codes_off(
                self._promotions, self._pricing, uow, [(0, cart)], quoted, refused, {0: expected}
            )
            if refused:
                raise refused[0]
            await self._promotions.keep_batch(
                uow, [(checkout_id, cart.customer_id, offers[0], quoted[0].total)]
            )
            await uow.commit()
        return quoted[0], offers[0]

    async def _settle(self, progress: _Progress, awaiting_transfer: bool) -> None:
        """Everything after the order exists: capture, mark paid, sell the stock, close the cart.

        Each call is idempotent, so `recover` can run this again after a crash.
        """
        if not (progress.payment_id and progress.order_id and progress.reservation_id):
            raise RuntimeError(f"checkout {progress.id} has no order to settle")
        await self._payments.attach_order(progress.payment_id, progress.order_id)
        if not progress.rest_known:
            # Recovery: whether a card paid the rest is in payments, not in this process.
            rest = await self._payment_of(progress.rest_reference)
            progress.rest_payment_id = rest.id if rest else None
        if progress.rest_payment_id is not None:
            await self._payments.attach_order(progress.rest_payment_id, progress.order_id)
        if not awaiting_transfer:
            payment = await self._step(
                "capture", progress.id, self._payments.capture(progress.payment_id)
            )
            captured = payment.captured
            if progress.rest_payment_id is not None:
                rest_payment = await self._step(
                    "capture", progress.id, self._payments.capture(progress.rest_payment_id)
                )
                captured += rest_payment.captured
            await self._orders.mark_paid(progress.order_id, captured)
        with step_span("commit", progress.id):
            await self._stock.commit(progress.reservation_id)
            await self._carts.close(progress.cart_id)

    async def _step(self, name: str, checkout_id: str, call: Awaitable[T]) -> T:
        with step_span(name, checkout_id):
            try:
                return await call
            except ColonnadeError as error:
                raise _Failed(error) from error

    async def _advance(self, progress: _Progress, step: Step, **ids: str) -> None:
        progress.step = step
        async with self._db.transaction() as uow:
            await uow.execute(
                update(checkouts)
                .where(checkouts.c.id == progress.id)
                .values(step=step.value, updated_at=self._clock.now(), **ids)
            )
            await uow.commit()

    async def _compensate(self, progress: _Progress) -> None:
        """Undo the steps that happened, newest first; each undo is idempotent.

        A step may have committed without the checkout noting it (the process died in
        between), so what is not noted is looked up by the checkout's id.
        """
        with step_span("compensate", progress.id):
            if progress.order_id is None:
                order = await self._orders.order_for_checkout(progress.id)
                progress.order_id = order.id if order else None
            if progress.order_id is not None:
                with step_span("cancel_order", progress.id):
                    await self._orders.cancel(
                        progress.order_id, actor="checkout", reason="checkout failed"
                    )
            if progress.payment_id is None:
                payment = await self._payment_of(progress.id)
                progress.payment_id = payment.id if payment else None
            if progress.payment_id is not None:
                await self._give_money_back(progress, progress.payment_id)
            rest = await self._payment_of(progress.rest_reference)
            if rest is not None:
                await self._give_money_back(progress, rest.id, key=f"{progress.id}:undo-card")
            with step_span("release", progress.id):
                if progress.order_id is None:
                    # No order: nothing it took is kept, not even stock sold for it over
                    # there by a purchase whose transaction here never committed.
                    await self._stock.give_back_for(progress.id)
                elif progress.reservation_id is not None:
                    await self._stock.release(progress.reservation_id)
                else:
                    await self._stock.release_for(progress.id)
                await self._promotions.give_back(progress.id)

    async def _give_money_back(
        self, progress: _Progress, payment_id: str, *, key: str | None = None
    ) -> None:
        """Void an authorization; refund a capture (a capture that landed before a crash)."""
        payment = await self._payments.payment(payment_id)
        if payment.captured.amount == 0:
            with step_span("void", progress.id):
                await self._payments.void(payment.id)
            return
        owed = payment.captured - payment.refunded
        if owed.amount > 0:
            with step_span("refund", progress.id):
                await self._payments.refund(payment.id, owed, key=key or f"{progress.id}:undo")
            if progress.order_id is not None:
                await self._sync_refunded(progress.order_id)

    async def _payment_of(self, checkout_id: str) -> Payment | None:
        try:
            return await self._payments.payment_for_checkout(checkout_id)
        except ColonnadeError:
            return None

    async def _finish_completed(self, progress: _Progress, body: dict[str, Any]) -> Outcome:
        async with self._db.transaction() as uow:
            await uow.execute(
                update(checkouts)
                .where(checkouts.c.id == progress.id)
                .values(
                    step=Step.COMPLETED.value,
                    response_status=201,
                    response_body=body,
                    updated_at=self._clock.now(),
                )
            )
            uow.record(
                CheckoutCompleted(
                    checkout_id=progress.id,
                    cart_id=progress.cart_id,
                    order_id=body["id"],
                    total=body["total"],
                )
            )
            await uow.commit()
        paid = body["status"] == OrderStatus.PAID.value
        CHECKOUTS.labels("paid" if paid else "pending_payment").inc()
        return Outcome(201, body)

    async def _finish_failed(self, progress: _Progress, error: ColonnadeError) -> Outcome:
        problem = failure_body(error, progress.id)
        now = self._clock.now()
        async with self._db.transaction() as uow:
            await uow.execute(
                update(checkouts)
                .where(checkouts.c.id == progress.id)
                .values(
                    step=Step.FAILED.value,
                    response_status=error.status,
                    response_body=problem,
                    error=error.detail,
                    updated_at=now,
                )
            )
            uow.record(
                CheckoutFailed.of(progress.id, progress.cart_id, progress.market, error, now)
            )
            await uow.commit()
        count_failure(error)
        return Outcome(error.status, problem)

    # --- after the sale: cancellations and refunds ---------------------------------------

    async def cancel_order(self, order_id: str, actor: str, reason: str) -> Order:
        """Cancel an order and give back what it held: its stock, and its money (the
        authorization voided, or the capture refunded)."""
        await self._orders.cancel(order_id, actor, reason)
        return await self.settle_cancellation(order_id)

    async def settle_cancellation(self, order_id: str) -> Order:
        """Give back what a cancelled order held. Idempotent: a crash midway, or the
        OrderCancelled event arriving after the route did it, only finishes the job."""
        order = await self._orders.order(order_id)
        await self._promotions.give_back(order.checkout_id)
        row = await self._checkout_row(order.checkout_id)
        reservation_id = row["reservation_id"] if row else None
        if reservation_id is not None:
            reservation = await self._stock.reservation(reservation_id)
            if reservation.status.value == "held":
                await self._stock.release(reservation_id)
            elif reservation.status.value == "committed":
                await self._stock.return_stock(reservation_id)
        for payment in await self._tenders(order):
            if payment.status in (PaymentStatus.AUTHORIZED, PaymentStatus.PENDING):
                await self._payments.void(payment.id)
            elif (owed := payment.captured - payment.refunded).amount > 0:
                rest = payment.id != order.payment_id
                await self._payments.refund(
                    payment.id, owed, key=f"{order_id}:cancel" + (":card" if rest else "")
                )
        return await self._sync_refunded(order_id)

    async def refund_lines(
        self, order_id: str, wanted: Sequence[tuple[str, int]], key: str
    ) -> Order:
        """Give back what these units of the order's lines (SKU, quantity) paid, prorated
        (discounts taken off; see OrdersService.hold_line_refund): the units are set aside
        first, so racing refunds never refund one twice, and put back if payments refuses
        the money. A provider that does not answer leaves them set aside: the same request,
        with the same key, finishes the refund."""
        amount = await self._orders.hold_line_refund(order_id, key, wanted)
        if amount.amount == 0:
            # Units a promotion made free: nothing to give back but the units.
            return await self._orders.order(order_id)
        try:
            return await self.refund_order(order_id, amount, key)
        except ProviderUnavailable:
            raise
        except ColonnadeError:
            await self._orders.release_line_refund(order_id, key)
            raise

    async def refund_order(self, order_id: str, amount: Money, key: str) -> Order:
        """Give back part or all of what an order paid; never more than was captured."""
        order = await self._orders.order(order_id)
        tenders = await self._tenders(order)
        if not tenders:
            raise NothingToRefund(order_id)
        if len(tenders) == 1:
            await self._payments.refund(tenders[0].id, amount, key=f"{order_id}:{key}")
            return await self._sync_refunded(order_id)
        # Split tender: the card first, then the gift card. A retry repeats the card part the
        # first attempt chose, so both attempts split the amount alike.
        gift, card = tenders
        card_key = f"{order_id}:{key}:card"
        first = await self._payments.refund_under(card_key)
        on_card = (
            first.amount
            if first is not None
            else min(amount.amount, (card.captured - card.refunded).amount)
        )
        if on_card > 0:
            await self._payments.refund(card.id, Money(on_card, amount.currency), key=card_key)
        if amount.amount > on_card:
            await self._payments.refund(
                gift.id, Money(amount.amount - on_card, amount.currency), key=f"{order_id}:{key}"
            )
        return await self._sync_refunded(order_id)

    async def _sync_refunded(self, order_id: str) -> Order:
        """Make the order's refunded amount what its payments say was refunded."""
        order = await self._orders.order(order_id)
        tenders = await self._tenders(order)
        if not tenders:
            return order
        refunded = Money.zero(order.currency)
        for payment in tenders:
            refunded += payment.refunded
        if refunded.amount > order.refunded.amount:
            order = await self._orders.record_refunded_total(order_id, refunded, actor="checkout")
        return order

    async def _tenders(self, order: Order) -> list[Payment]:
        """What paid the order: its payment, and the card that paid the rest of a gift card."""
        if order.payment_id is None:
            return []
        tenders = [await self._payments.payment(order.payment_id)]
        rest = await self._payment_of(f"{order.checkout_id}:card")
        if rest is not None:
            tenders.append(rest)
        return tenders

    async def _checkout_row(self, checkout_id: str) -> Any:
        async with self._db.reading() as conn:
            return (
                (await conn.execute(select(checkouts).where(checkouts.c.id == checkout_id)))
                .mappings()
                .first()
            )

    async def recover(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Finish or undo checkouts that stopped midway (a crashed process); returns how many.

        A checkout whose order was placed goes forward (capture, sell, close the cart); one
        that had not reached its order is undone (void, release).
        """
        cutoff = self._clock.now() - older_than
        async with self._db.reading() as conn:
            rows = (
                (
                    await conn.execute(
                        select(checkouts).where(
                            checkouts.c.step.not_in([s.value for s in FINISHED]),
                            checkouts.c.updated_at <= cutoff,
                        )
                    )
                )
                .mappings()
                .all()
            )
        recovered = 0
        for row in rows:
            if row["id"] in self._running or not await self._claim_orphan(row):
                continue
            progress = _Progress(
                id=row["id"],
                cart_id=row["cart_id"],
                step=Step(row["step"]),
                reservation_id=row["reservation_id"],
                payment_id=row["payment_id"],
                order_id=row["order_id"],
            )
            try:
                await self._recover_one(progress)
            except Exception:  # one stuck checkout must not block the others
                log.exception("checkout.recovery_failed", checkout_id=progress.id)
                continue
            recovered += 1
        return recovered

    async def _claim_orphan(self, row: Any) -> bool:
        """Take an orphaned checkout for this process: the first to move its clock wins, so
        several processes recovering at once never work on the same one; if this one dies
        too, the checkout is an orphan again after the same wait."""
        async with self._db.transaction() as uow:
            claimed = await uow.execute(
                update(checkouts)
                .where(
                    checkouts.c.id == row["id"],
                    checkouts.c.step == row["step"],
                    checkouts.c.updated_at == row["updated_at"],
                )
                .values(updated_at=self._clock.now())
            )
            await uow.commit()
        return bool(claimed.rowcount == 1)

    async def _recover_one(self, progress: _Progress) -> None:
        payment = await self._payment_of(progress.id)
        if progress.step == Step.PLACED and payment is not None:
            try:
                await self._settle(progress, payment.status == PaymentStatus.PENDING)
            except (_Failed, ColonnadeError) as failure:
                error = failure.error if isinstance(failure, _Failed) else failure
                await self._compensate(progress)
                await self._finish_failed(progress, error)
                return
            order = await self._orders.order(progress.order_id or "")
            body = order_body(order, None, payment.method.value, progress.id)
            await self._finish_completed(progress, body)
            log.info("checkout.recovered_forward", checkout_id=progress.id)
            return
        await self._compensate(progress)
        await self._finish_failed(progress, CheckoutInterrupted())
        log.info("checkout.recovered_back", checkout_id=progress.id)
