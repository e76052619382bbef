"""Inventory's public use cases: stock levels, reservations with expiry, and the stock ledger.

Every method is one transaction. Reservations never oversell: the stock rows a reservation
touches are locked in SKU order (so two carts wanting the same SKUs in opposite orders
cannot deadlock), each piece is taken by a conditional UPDATE whose row count decides, and
the table's CHECK constraints refuse anything that would still slip through.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from colonnade.kernel.bulk import insert_rows
from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.ids import new_id
from colonnade.kernel.metrics import RESERVATIONS_EXPIRED, STOCKOUTS
from colonnade.kernel.uow import Read, UnitOfWork
from colonnade.modules.inventory import domain, postgres
from colonnade.modules.inventory.domain import (
    LedgerReason,
    OutOfStock,
    ReservationNotHeld,
    ReservationStatus,
    UnknownReservation,
    UnknownWarehouse,
)
from colonnade.modules.inventory.events import (
    StockCommitted,
    StockDepleted,
    StockLevelSet,
    StockReleased,
    StockReserved,
    StockReturned,
)
from colonnade.modules.inventory.schema import (
    ledger,
    reservation_lines,
    reservations,
    stock,
    warehouses,
)

__all__ = [
    "InventoryService",
    "LedgerEntry",
    "OutOfStock",
    "Reservation",
    "ReservationLine",
    "StockLevel",
    "Warehouse",
    "WarehouseStock",
]


@dataclass(frozen=True)
class WarehouseStock:
    code: str
    on_hand: int
    reserved: int
    sold: int
    available: int


@dataclass(frozen=True)
class StockLevel:
    """One SKU's stock summed over warehouses, with the per-warehouse breakdown."""

    sku: str
    on_hand: int
    reserved: int
    sold: int
    available: int
    warehouses: tuple[WarehouseStock, ...]


@dataclass(frozen=True)
class ReservationLine:
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True)
class Reservation:
    id: str
    reference: str
    status: ReservationStatus
    expires_at: datetime
    created_at: datetime
    lines: tuple[ReservationLine, ...]


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    sku: str
    warehouse: str
    reason: LedgerReason
    delta_on_hand: int
    delta_reserved: int
    delta_sold: int
    reference: str | None
    at: datetime


@dataclass(frozen=True)
class Warehouse:
    code: str
    name: str
    created_at: datetime


_available_units = stock.c.on_hand - stock.c.reserved - stock.c.sold

# Every storefront page asks this of its SKUs: one fixed statement, straight on the driver.
_AVAILABLE = Read(
    postgresql=(
        "SELECT sku, sum(on_hand - reserved - sold) FROM inventory_stock"
        " WHERE sku = ANY($1::varchar[]) GROUP BY sku"
    ),
    sqlite=(
        "SELECT sku, sum(on_hand - reserved - sold) FROM inventory_stock"
        " WHERE sku IN (SELECT value FROM json_each(?1)) GROUP BY sku"
    ),
)

# A reservation outpaced this often by other buyers of the same rows reports what is left.
RESERVE_ATTEMPTS = 3


class _Outpaced(Exception):
    """Another reservation took the stock between this one's read and its decrement."""

    def __init__(self, sku: str, available: int) -> None:
        super().__init__(sku)
        self.sku = sku
        self.available = available


class StockMoved(Exception):
    """An optimistic batch reservation found, on locking, that other buyers had changed the
    stock under its decision: run the transaction again, locking first."""

    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__(", ".join(skus))
        self.skus = list(skus)


async def _available(
    uow: UnitOfWork, skus: Sequence[str], *, lock: bool
) -> dict[str, dict[str, int]]:
    """Units available per SKU and warehouse; `lock` takes the rows in (sku, warehouse)
    order, the order every batch locks them in, so batches never deadlock."""
    by_sku: dict[str, dict[str, int]] = defaultdict(dict)
    if uow.on_postgresql:
        found = await uow.fetch(postgres.AVAILABLE_LOCKED if lock else postgres.AVAILABLE, skus)
    else:  # SQLite's one writer holds the whole database: nothing to lock
        found = await uow.execute(
            select(stock.c.sku, stock.c.warehouse, _available_units)
            .where(stock.c.sku.in_(skus))
            .order_by(stock.c.sku, stock.c.warehouse)
        )
    for sku, warehouse, units in found:
        by_sku[sku][warehouse] = units
    return by_sku


class InventoryService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        default_warehouse: str = "main",
        reservation_ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_warehouse = domain.valid_warehouse_code(default_warehouse)
        self._ttl = domain.valid_ttl(reservation_ttl)

    # --- stock levels ---------------------------------------------------------------------

    async def set_on_hand(self, sku: str, on_hand: int, warehouse: str | None = None) -> StockLevel:
        domain.valid_sku(sku)
        domain.valid_on_hand(on_hand)
        code = self._default_warehouse if warehouse is None else warehouse
        domain.valid_warehouse_code(code)
        now = self._clock.now()
        async with self._db.transaction() as uow:
            if code == self._default_warehouse:
                await uow.execute(
                    _insert(uow, warehouses)
                    .values(code=code, name=code, created_at=now)
                    .on_conflict_do_nothing()
                )
            elif (
                await uow.connection.scalar(
                    select(warehouses.c.code).where(warehouses.c.code == code)
                )
                is None
            ):
                raise UnknownWarehouse(code)
            # Create the row if missing, then lock it: a concurrent reservation waits for us.
            await uow.execute(
                _insert(uow, stock)
                .values(sku=sku, warehouse=code, on_hand=0, reserved=0, sold=0)
                .on_conflict_do_nothing()
            )
            row = (
                await uow.execute(
                    select(stock.c.on_hand, stock.c.reserved, stock.c.sold)
                    .where(stock.c.sku == sku, stock.c.warehouse == code)
                    .with_for_update()
                )
            ).one()
            domain.check_on_hand(sku, code, on_hand, row.reserved, row.sold)
            await uow.execute(
                update(stock)
                .where(stock.c.sku == sku, stock.c.warehouse == code)
                .values(on_hand=on_hand)
            )
            await uow.execute(
                ledger.insert().values(
                    _ledger_row(
                        sku,
                        code,
                        LedgerReason.SET_ON_HAND,
                        now,
                        None,
                        on_hand=on_hand - row.on_hand,
                    )
                )
            )
            level = await _stock_level(uow.connection, sku)
            uow.record(
                StockLevelSet(
                    sku=sku,
                    warehouse=code,
                    on_hand=on_hand,
                    available=level.available,
                    set_at=now.isoformat(),
                )
            )
            await uow.commit()
        return level

    async def stock(self, sku: str) -> StockLevel:
        async with self._db.reading() as conn:
            return await _stock_level(conn, sku)

    async def availability(self, skus: list[str]) -> dict[str, int]:
        """Units available per SKU, summed over warehouses; 0 for a SKU never stocked."""
        wanted = list(dict.fromkeys(skus))
        if not wanted:
            return {}
        found = {sku: int(units) for sku, units in await self._db.read(_AVAILABLE, wanted)}
        return {sku: found.get(sku, 0) for sku in wanted}

    async def set_warehouse(self, code: str, name: str) -> Warehouse:
        domain.valid_warehouse_code(code)
        name = domain.valid_warehouse_name(name)
        async with self._db.transaction() as uow:
            insert = _insert(uow, warehouses).values(
                code=code, name=name, created_at=self._clock.now()
            )
            await uow.execute(
                insert.on_conflict_do_update(
                    index_elements=[warehouses.c.code], set_={"name": name}
                )
            )
            row = (await uow.execute(select(warehouses).where(warehouses.c.code == code))).one()
            await uow.commit()
        return Warehouse(code=row.code, name=row.name, created_at=row.created_at)

    # --- reservations ---------------------------------------------------------------------

    async def reserve(
        self, reference: str, lines: list[tuple[str, int]], ttl: timedelta | None = None
    ) -> Reservation:
        """Hold every line or none: OutOfStock names the first SKU that falls short.

        In a flash sale every buyer wants the same stock row, so its lock is held as briefly as
        possible: the row is read without a lock, the reservation is written, and the
        conditional decrements come last, just before the commit. A decrement that finds too
        little (someone was faster) undoes everything and the plan is made again from fresh
        figures, which then name the shortfall.
        """
        wanted = domain.requested_quantities(reference, lines)
        ttl = self._ttl if ttl is None else domain.valid_ttl(ttl)
        for _ in range(RESERVE_ATTEMPTS - 1):
            try:
                return await self._reserve_once(reference, wanted, ttl)
            except _Outpaced:
                continue
        try:
            return await self._reserve_once(reference, wanted, ttl)
        except _Outpaced as outpaced:
            raise OutOfStock(outpaced.sku, wanted[outpaced.sku], outpaced.available) from None

    async def _reserve_once(
        self, reference: str, wanted: dict[str, int], ttl: timedelta
    ) -> Reservation:
        now = self._clock.now()
        reservation_id = new_id()
        async with self._db.transaction() as uow:
            rows = (
                await uow.execute(
                    select(
                        stock.c.sku, stock.c.warehouse, _available_units.label("available")
                    ).where(stock.c.sku.in_(list(wanted)))
                )
            ).all()
            by_sku: dict[str, dict[str, int]] = defaultdict(dict)
            for row in rows:
                by_sku[row.sku][row.warehouse] = row.available
            # Plan every line before writing anything, so a shortfall changes nothing.
            plan = {sku: domain.allocate(sku, qty, by_sku[sku]) for sku, qty in wanted.items()}
            # (sku, warehouse) order: every reservation locks stock rows in the same order.
            pieces = sorted(
                (
                    ReservationLine(sku, warehouse, quantity)
                    for sku, parts in plan.items()
                    for warehouse, quantity in parts
                ),
                key=lambda p: (p.sku, p.warehouse),
            )
            expires_at = now + ttl
            await uow.execute(
                reservations.insert().values(
                    id=reservation_id,
                    reference=reference,
                    status=ReservationStatus.HELD.value,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
            await uow.execute(
                reservation_lines.insert(),
                [{"reservation_id": reservation_id, **_line_dict(p)} for p in pieces],
            )
            await _write_ledger(uow, pieces, LedgerReason.RESERVE, reservation_id, now)
            uow.record(
                StockReserved(
                    reservation_id=reservation_id,
                    reference=reference,
                    lines=[_line_dict(p) for p in pieces],
                )
            )
            await uow.flush()
            for piece in pieces:
                left = (
                    await uow.execute(
                        update(stock)
                        .where(
                            stock.c.sku == piece.sku,
                            stock.c.warehouse == piece.warehouse,
                            _available_units >= piece.quantity,
                        )
                        .values(reserved=stock.c.reserved + piece.quantity)
                        .returning(_available_units)
                    )
                ).scalar_one_or_none()
                if left is None:
                    raise _Outpaced(piece.sku, sum(by_sku[piece.sku].values()))
                by_sku[piece.sku][piece.warehouse] = left
            depleted = [sku for sku in wanted if sum(by_sku[sku].values()) == 0]
            for sku in depleted:
                uow.record(StockDepleted(sku=sku, depleted_at=now.isoformat()))
            await uow.commit()
        STOCKOUTS.inc(len(depleted))
        return Reservation(
            id=reservation_id,
            reference=reference,
            status=ReservationStatus.HELD,
            expires_at=expires_at,
            created_at=now,
            lines=tuple(pieces),
        )

    # --- batches, on the caller's unit of work (the batched purchase) ----------------------

    async def reserve_batch(
        self,
        uow: UnitOfWork,
        requests: Sequence[tuple[str, list[tuple[str, int]]]],
        *,
        optimistic: bool = False,
    ) -> list[Reservation | ColonnadeError]:
        """Hold stock for each (reference, lines), all lines or none, earliest first.

        The stock rows of the whole batch are read and locked once, in (sku, warehouse)
        order, so batches never deadlock, and each row is written once per batch however
        many buyers share it: a flash sale's one hot row costs one update per batch, not one
        per sale. Who gets what is decided by `domain.allocate_in_order`.

        `optimistic` (PostgreSQL): decide on an unlocked reading and lock the rows only as
        the transaction's last step, where the decision is made again on the locked rows; if
        it comes out differently the step raises `StockMoved` and the caller runs its
        transaction again without `optimistic`. The hot rows are then held for two
        statements and the commit instead of the whole transaction, which is what lets two
        workers' batches, and a worker's hold and settle batches, overlap.
        """
        wanted: list[dict[str, int] | ColonnadeError] = []
        for reference, lines in requests:
            try:
                wanted.append(domain.requested_quantities(reference, lines))
            except ColonnadeError as invalid:
                wanted.append(invalid)
        skus = sorted({sku for lines in wanted if isinstance(lines, dict) for sku in lines})
        asking = [w for w in wanted if isinstance(w, dict)]
        # SQLite's one writer holds the whole database already: nothing to lock, or to recheck.
        locking = uow.connection.dialect.name == "postgresql"
        optimistic = optimistic and locking
        by_sku = await _available(uow, skus, lock=locking and not optimistic)
        plan = domain.allocate_in_order(asking, by_sku)
        now = self._clock.now()
        expires_at = now + self._ttl
        answers: list[Reservation | ColonnadeError] = []
        plans = iter(plan)
        for (reference, _), asked in zip(requests, wanted, strict=True):
            pieces = next(plans) if isinstance(asked, dict) else asked
            if isinstance(pieces, ColonnadeError):
                answers.append(pieces)
                continue
            answers.append(
                Reservation(
                    id=new_id(),
                    reference=reference,
                    status=ReservationStatus.HELD,
                    expires_at=expires_at,
                    created_at=now,
                    lines=tuple(ReservationLine(*piece) for piece in pieces),
                )
            )
        held = [a for a in answers if isinstance(a, Reservation)]
        if held:
            await _insert_reservations(uow, held, now)
        taken = _units_per_row(held)

        async def take() -> None:
            available = by_sku
            if optimistic:
                available = await _available(uow, skus, lock=True)
                if not domain.same_allocation(plan, domain.allocate_in_order(asking, available)):
                    raise StockMoved(skus)
            if not taken:
                return
            if uow.on_postgresql:
                await uow.execute_many(
                    postgres.TAKE_UNITS, [(s, w, q) for (s, w), q in sorted(taken.items())]
                )
            else:
                await uow.execute(
                    update(stock)
                    .where(
                        stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh")
                    )
                    .values(reserved=stock.c.reserved + bindparam("b_q")),
                    [{"b_sku": s, "b_wh": w, "b_q": q} for (s, w), q in sorted(taken.items())],
                )
            for (sku, warehouse), quantity in taken.items():
                available[sku][warehouse] -= quantity
            depleted = sorted({s for s, _ in taken if sum(available[s].values()) == 0})
            for sku in depleted:
                uow.record(StockDepleted(sku=sku, depleted_at=now.isoformat()))
            if depleted:
                uow.after_commit(lambda: STOCKOUTS.inc(len(depleted)))

        if optimistic and skus:
            # Refusals too: a "sold out" decided on an unlocked reading is checked as well.
            uow.before_commit(take)
        else:
            await take()
        return answers

    async def settle_batch(
        self, uow: UnitOfWork, sold: Sequence[Reservation], released: Sequence[Reservation]
    ) -> list[ColonnadeError | None]:
        """Turn the `sold` reservations' stock into sold stock and give the `released` ones'
        back, one statement per table for the whole batch. The stock rows are written in one
        pass in (sku, warehouse) order, the order every reservation locks them in, so a batch
        never deadlocks with another. A sold reservation no longer held (it expired under a
        slow payment) is refused alone; a released one no longer held is left as it is."""
        held = [*sold, *released]
        if not held:
            return []
        moved = await _move_held(uow, sold, ReservationStatus.COMMITTED)
        moved |= await _move_held(uow, released, ReservationStatus.RELEASED)
        now = self._clock.now()
        selling = [r for r in sold if r.id in moved]
        giving_back = [r for r in released if r.id in moved]
        units: dict[tuple[str, str], tuple[int, int]] = {}
        for reservations_of, reason, selling_them in (
            (selling, LedgerReason.COMMIT, 1),
            (giving_back, LedgerReason.RELEASE, 0),
        ):
            if not reservations_of:
                continue
            await _write_batch_ledger(uow, reservations_of, reason, now)
            for row, quantity in _units_per_row(reservations_of).items():
                reserved, sold_units = units.get(row, (0, 0))
                units[row] = (reserved + quantity, sold_units + quantity * selling_them)
        if units:

            async def move_units() -> None:
                if uow.on_postgresql:
                    await uow.execute_many(
                        postgres.MOVE_UNITS,
                        [(s, w, *moving) for (s, w), moving in sorted(units.items())],
                    )
                    return
                await uow.execute(
                    update(stock)
                    .where(
                        stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh")
                    )
                    .values(
                        reserved=stock.c.reserved - bindparam("b_held"),
                        sold=stock.c.sold + bindparam("b_sold"),
                    ),
                    [
                        {"b_sku": s, "b_wh": w, "b_held": held_units, "b_sold": sold_units}
                        for (s, w), (held_units, sold_units) in sorted(units.items())
                    ],
                )

            # The contended stock rows are written as the transaction's last step.
            uow.before_commit(move_units)
        if len(selling) == len(sold):
            return [None for _ in sold]
        # Rare: a reservation expired under a slow payment. Say what became of it.
        found = await uow.execute(
            select(reservations.c.id, reservations.c.status).where(
                reservations.c.id.in_([r.id for r in sold if r.id not in moved])
            )
        )
        now_is: dict[str, str] = {row.id: row.status for row in found}
        return [
            None
            if r.id in moved
            else ReservationNotHeld(r.id, ReservationStatus(now_is[r.id]), "committed")
            for r in sold
        ]

    # --- batches in a transaction of their own (the purchase with inventory elsewhere) -----

    async def hold(
        self, requests: list[tuple[str, list[tuple[str, int]]]]
    ) -> list[Reservation | ColonnadeError]:
        """`reserve_batch` as one transaction here: what a checkout process whose database
        is not inventory's asks, one call per batch of its purchases."""
        try:
            return await self._hold_once(requests, optimistic=True)
        except StockMoved:
            return await self._hold_once(requests, optimistic=False)

    async def _hold_once(
        self, requests: list[tuple[str, list[tuple[str, int]]]], *, optimistic: bool
    ) -> list[Reservation | ColonnadeError]:
        async with self._db.transaction() as uow:
            held = await self.reserve_batch(uow, requests, optimistic=optimistic)
            await uow.commit()
        return held

    async def settle(
        self, sold: list[Reservation], released: list[Reservation]
    ) -> list[ColonnadeError | None]:
        """`settle_batch` as one transaction here. Asked again (its caller's transaction
        failed after this one committed, and its batch runs again), a reservation already
        sold is sold, not refused."""
        async with self._db.transaction() as uow:
            settled = await self.settle_batch(uow, sold, released)
            await uow.commit()
        return [
            None
            if isinstance(error, ReservationNotHeld)
            and error.extensions.get("status") == ReservationStatus.COMMITTED.value
            else error
            for error in settled
        ]

    async def give_back_for(self, reference: str) -> int:
        """Give back all the stock `reference` (a checkout that placed no order) took: held
        stock is released, sold stock returned (its checkout's process died after the sale
        committed here and before its own transaction did). Returns how many reservations
        moved; asked again, none."""
        async with self._db.reading() as conn:
            found = (
                await conn.execute(
                    select(reservations.c.id, reservations.c.status).where(
                        reservations.c.reference == reference,
                        reservations.c.status.in_(
                            [ReservationStatus.HELD.value, ReservationStatus.COMMITTED.value]
                        ),
                    )
                )
            ).all()
        for reservation_id, status in found:
            if status == ReservationStatus.HELD.value:
                try:
                    await self.release(reservation_id)
                    continue
                except ReservationNotHeld as sold:
                    # Sold meanwhile: its sale (a call that timed out over there) came first.
                    if sold.extensions.get("status") != ReservationStatus.COMMITTED.value:
                        raise
            await self.return_stock(reservation_id)
        return len(found)

    async def commit(self, reservation_id: str) -> None:
        """Turn held stock into sold stock. Committing twice is harmless.

        The stock rows are written last, so their locks are held only until the commit."""
        async with self._db.transaction() as uow:
            status, lines = await _locked_reservation(uow, reservation_id)
            if not domain.should_commit(reservation_id, status):
                return
            await _set_status(uow, [reservation_id], ReservationStatus.COMMITTED)
            await _write_ledger(uow, lines, LedgerReason.COMMIT, reservation_id, self._clock.now())
            uow.record(StockCommitted(reservation_id=reservation_id))
            await uow.flush()
            await uow.execute(
                update(stock)
                .where(stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh"))
                .values(
                    reserved=stock.c.reserved - bindparam("b_q"),
                    sold=stock.c.sold + bindparam("b_q"),
                ),
                [{"b_sku": ln.sku, "b_wh": ln.warehouse, "b_q": ln.quantity} for ln in lines],
            )
            await uow.commit()

    async def release(self, reservation_id: str) -> None:
        """Give held stock back. Releasing twice, or after expiry, is harmless."""
        async with self._db.transaction() as uow:
            status, lines = await _locked_reservation(uow, reservation_id)
            if not domain.should_release(reservation_id, status):
                return
            await _give_back(uow, lines)
            await _set_status(uow, [reservation_id], ReservationStatus.RELEASED)
            await _write_ledger(uow, lines, LedgerReason.RELEASE, reservation_id, self._clock.now())
            uow.record(StockReleased(reservation_id=reservation_id, reason="released"))
            await uow.commit()

    async def return_stock(self, reservation_id: str) -> None:
        """Put sold stock back on the shelf (its order was cancelled). Twice is harmless."""
        async with self._db.transaction() as uow:
            status, lines = await _locked_reservation(uow, reservation_id)
            if not domain.should_return(reservation_id, status):
                return
            await uow.execute(
                update(stock)
                .where(stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh"))
                .values(sold=stock.c.sold - bindparam("b_q")),
                [{"b_sku": ln.sku, "b_wh": ln.warehouse, "b_q": ln.quantity} for ln in lines],
            )
            await _set_status(uow, [reservation_id], ReservationStatus.RETURNED)
            await _write_ledger(uow, lines, LedgerReason.RETURN, reservation_id, self._clock.now())
            uow.record(StockReturned(reservation_id=reservation_id))
            await uow.commit()

    async def release_for(self, reference: str) -> int:
        """Release every reservation still held for `reference` (a checkout that died before
        it could note its reservation's id); returns how many."""
        async with self._db.reading() as conn:
            held = (
                (
                    await conn.execute(
                        select(reservations.c.id).where(
                            reservations.c.reference == reference,
                            reservations.c.status == ReservationStatus.HELD.value,
                        )
                    )
                )
                .scalars()
                .all()
            )
        for reservation_id in held:
            await self.release(reservation_id)
        return len(held)

    async def expire_due(self) -> int:
        """Release every held reservation whose time is up; returns how many."""
        now = self._clock.now()
        async with self._db.transaction() as uow:
            # SKIP LOCKED: a reservation being committed right now is not ours to expire.
            due = (
                (
                    await uow.execute(
                        select(reservations.c.id)
                        .where(
                            reservations.c.status == ReservationStatus.HELD.value,
                            reservations.c.expires_at <= now,
                        )
                        .order_by(reservations.c.id)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not due:
                return 0
            lines_of = await _lines_of(uow.connection, due)
            totals: dict[tuple[str, str], int] = defaultdict(int)
            for lines in lines_of.values():
                for ln in lines:
                    totals[(ln.sku, ln.warehouse)] += ln.quantity
            await _give_back(uow, [ReservationLine(s, w, q) for (s, w), q in totals.items()])
            await _set_status(uow, due, ReservationStatus.EXPIRED)
            for reservation_id in due:
                await _write_ledger(
                    uow, lines_of.get(reservation_id, ()), LedgerReason.EXPIRE, reservation_id, now
                )
                uow.record(StockReleased(reservation_id=reservation_id, reason="expired"))
            await uow.commit()
        RESERVATIONS_EXPIRED.inc(len(due))
        return len(due)

    async def reservation(self, reservation_id: str) -> Reservation:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(reservations).where(reservations.c.id == reservation_id))
            ).one_or_none()
            if row is None:
                raise UnknownReservation(reservation_id)
            lines = (await _lines_of(conn, [reservation_id])).get(reservation_id, ())
        return Reservation(
            id=row.id,
            reference=row.reference,
            status=ReservationStatus(row.status),
            expires_at=row.expires_at,
            created_at=row.created_at,
            lines=tuple(lines),
        )

    # --- the ledger -----------------------------------------------------------------------

    async def ledger(self, sku: str, limit: int = 100) -> list[LedgerEntry]:
        """The SKU's newest ledger entries first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise domain.InvalidQuantity(f"limit must be an integer from 1 to 1000, got {limit!r}")
        async with self._db.reading() as conn:
            rows = await conn.execute(
                select(ledger).where(ledger.c.sku == sku).order_by(ledger.c.id.desc()).limit(limit)
            )
            return [
                LedgerEntry(
                    id=row.id,
                    sku=row.sku,
                    warehouse=row.warehouse,
                    reason=LedgerReason(row.reason),
                    delta_on_hand=row.delta_on_hand,
                    delta_reserved=row.delta_reserved,
                    delta_sold=row.delta_sold,
                    reference=row.reference,
                    at=row.at,
                )
                for row in rows
            ]

    async def check_ledger(self) -> list[str]:
        """SKUs whose stock levels (per warehouse) differ from the sums of their ledger deltas.

        One grouped query over the ledger and the levels together, so the whole check is one
        pass for the database, cheap enough to run every few minutes on a large catalog."""
        both = union_all(
            select(
                ledger.c.sku,
                ledger.c.warehouse,
                ledger.c.delta_on_hand.label("on_hand"),
                ledger.c.delta_reserved.label("reserved"),
                ledger.c.delta_sold.label("sold"),
            ),
            select(
                stock.c.sku,
                stock.c.warehouse,
                (-stock.c.on_hand).label("on_hand"),
                (-stock.c.reserved).label("reserved"),
                (-stock.c.sold).label("sold"),
            ),
        ).subquery()
        drifting = (
            select(both.c.sku)
            .group_by(both.c.sku, both.c.warehouse)
            .having(
                or_(
                    func.sum(both.c.on_hand) != 0,
                    func.sum(both.c.reserved) != 0,
                    func.sum(both.c.sold) != 0,
                )
            )
        )
        async with self._db.reading() as conn:
            skus = (await conn.execute(drifting)).scalars().all()
        return sorted(set(skus))


# --- helpers ------------------------------------------------------------------------------


def _insert(uow: UnitOfWork, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if uow.connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _line_dict(line: ReservationLine) -> dict[str, Any]:
    return {"sku": line.sku, "warehouse": line.warehouse, "quantity": line.quantity}


def _ledger_row(
    sku: str,
    warehouse: str,
    reason: LedgerReason,
    at: datetime,
    reference: str | None,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    sold: int = 0,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "warehouse": warehouse,
        "reason": reason.value,
        "delta_on_hand": on_hand,
        "delta_reserved": reserved,
        "delta_sold": sold,
        "reference": reference,
        "at": at,
    }


_RESERVATION_DELTAS: dict[LedgerReason, tuple[int, int]] = {
    # (reserved, sold) per unit of the line
    LedgerReason.RESERVE: (1, 0),
    LedgerReason.COMMIT: (-1, 1),
    LedgerReason.RELEASE: (-1, 0),
    LedgerReason.EXPIRE: (-1, 0),
    LedgerReason.RETURN: (0, -1),
}


async def _write_ledger(
    uow: UnitOfWork,
    lines: Iterable[ReservationLine],
    reason: LedgerReason,
    reservation_id: str,
    at: datetime,
) -> None:
    per_reserved, per_sold = _RESERVATION_DELTAS[reason]
    rows = [
        _ledger_row(
            ln.sku,
            ln.warehouse,
            reason,
            at,
            reservation_id,
            reserved=per_reserved * ln.quantity,
            sold=per_sold * ln.quantity,
        )
        for ln in lines
    ]
    if rows:
        await uow.execute(ledger.insert(), rows)


async def _insert_reservations(uow: UnitOfWork, held: Sequence[Reservation], now: datetime) -> None:
    await insert_rows(
        uow,
        reservations,
        [
            {
                "id": r.id,
                "reference": r.reference,
                "status": r.status.value,
                "expires_at": r.expires_at,
                "created_at": r.created_at,
            }
            for r in held
        ],
    )
    await insert_rows(
        uow,
        reservation_lines,
        [{"reservation_id": r.id, **_line_dict(ln)} for r in held for ln in r.lines],
    )
    await _write_batch_ledger(uow, held, LedgerReason.RESERVE, now)


async def _write_batch_ledger(
    uow: UnitOfWork, held: Sequence[Reservation], reason: LedgerReason, at: datetime
) -> None:
    per_reserved, per_sold = _RESERVATION_DELTAS[reason]
    await insert_rows(
        uow,
        ledger,
        [
            _ledger_row(
                ln.sku,
                ln.warehouse,
                reason,
                at,
                r.id,
                reserved=per_reserved * ln.quantity,
                sold=per_sold * ln.quantity,
            )
            for r in held
            for ln in r.lines
        ],
    )


async def _move_held(
    uow: UnitOfWork, held: Sequence[Reservation], to: ReservationStatus
) -> set[str]:
    """Move these reservations on from `held`; the ids of those that were still held."""
    if not held:
        return set()
    if uow.on_postgresql:
        rows = await uow.fetch(postgres.MOVE_HELD, [r.id for r in held], to.value)
        return {row[0] for row in rows}
    moved = await uow.execute(
        update(reservations)
        .where(
            reservations.c.id.in_([r.id for r in held]),
            reservations.c.status == ReservationStatus.HELD.value,
        )
        .values(status=to.value)
        .returning(reservations.c.id)
    )
    return set(moved.scalars().all())


def _units_per_row(held: Sequence[Reservation]) -> dict[tuple[str, str], int]:
    """Units per stock row over a batch, in (sku, warehouse) order: the order rows are locked
    in, and one update per row however many reservations share it."""
    units: dict[tuple[str, str], int] = defaultdict(int)
    for r in held:
        for ln in r.lines:
            units[(ln.sku, ln.warehouse)] += ln.quantity
    return dict(sorted(units.items()))


async def _stock_level(conn: Any, sku: str) -> StockLevel:
    rows = await conn.execute(
        select(stock.c.warehouse, stock.c.on_hand, stock.c.reserved, stock.c.sold)
        .where(stock.c.sku == sku)
        .order_by(stock.c.warehouse)
    )
    per_warehouse = tuple(
        WarehouseStock(
            code=r.warehouse,
            on_hand=r.on_hand,
            reserved=r.reserved,
            sold=r.sold,
            available=domain.available(r.on_hand, r.reserved, r.sold),
        )
        for r in rows
    )
    on_hand = sum(w.on_hand for w in per_warehouse)
    reserved = sum(w.reserved for w in per_warehouse)
    sold = sum(w.sold for w in per_warehouse)
    return StockLevel(
        sku=sku,
        on_hand=on_hand,
        reserved=reserved,
        sold=sold,
        available=domain.available(on_hand, reserved, sold),
        warehouses=per_warehouse,
    )


async def _locked_reservation(
    uow: UnitOfWork, reservation_id: str
) -> tuple[ReservationStatus, list[ReservationLine]]:
    status = await uow.connection.scalar(
        select(reservations.c.status).where(reservations.c.id == reservation_id).with_for_update()
    )
    if status is None:
        raise UnknownReservation(reservation_id)
    lines = await _lines_of(uow.connection, [reservation_id])
    return ReservationStatus(status), lines.get(reservation_id, [])


async def _lines_of(conn: Any, reservation_ids: list[str]) -> dict[str, list[ReservationLine]]:
    """Each reservation's lines, in (sku, warehouse) order: the order stock rows are locked in."""
    rows = await conn.execute(
        select(reservation_lines)
        .where(reservation_lines.c.reservation_id.in_(reservation_ids))
        .order_by(reservation_lines.c.sku, reservation_lines.c.warehouse)
    )
    found: dict[str, list[ReservationLine]] = defaultdict(list)
    for r in rows:
        found[r.reservation_id].append(ReservationLine(r.sku, r.warehouse, r.quantity))
    return found


async def _give_back(uow: UnitOfWork, lines: Iterable[ReservationLine]) -> None:
    ordered = sorted(lines, key=lambda ln: (ln.sku, ln.warehouse))
    if not ordered:
        return
    await uow.execute(
        update(stock)
        .where(and_(stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh")))
        .values(reserved=stock.c.reserved - bindparam("b_q")),
        [{"b_sku": ln.sku, "b_wh": ln.warehouse, "b_q": ln.quantity} for ln in ordered],
    )


async def _set_status(uow: UnitOfWork, ids: Iterable[str], status: ReservationStatus) -> None:
    await uow.execute(
        update(reservations).where(reservations.c.id.in_(list(ids))).values(status=status.value)
    )
