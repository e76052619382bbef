"""Compliance use cases: the audit log, a customer's data exported or erased, guest retention.

The compliance module holds no customer data of its own beyond the audit payloads; it asks
the modules that do, through the ports below, which the composition root fills with their
public services.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from colonnade.kernel.clock import Clock
from colonnade.kernel.crypto import Keyring, KeyringError, count_stale, reencrypt
from colonnade.kernel.db import Database
from colonnade.kernel.ids import new_id
from colonnade.kernel.principal import Principal
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.compliance.domain import (
    GENESIS_HASH,
    START,
    ChainedFields,
    ChainLink,
    CustomerNotFound,
    break_at_end,
    break_in_link,
    canonical_json,
    payload_digest,
)
from colonnade.modules.compliance.events import CustomerDataErased
from colonnade.modules.compliance.schema import audit_head, audit_log, erasures

PAYLOAD_CONTEXT = "compliance.audit.payload"
_HEAD = 1


class CustomerAccounts(Protocol):
    """The identity module, as compliance needs it."""

    async def customer_exists(self, customer_id: str) -> bool: ...

    async def export_customer(self, customer_id: str) -> dict[str, Any]: ...

    async def erase_customer(self, customer_id: str) -> None: ...


class CustomerOrders(Protocol):
    """The orders module, as compliance needs it."""

    async def export_for_customer(self, customer_id: str) -> list[dict[str, Any]]: ...

    async def anonymize_customer(self, customer_id: str) -> int: ...

    async def erase_guest_data(self, placed_before: datetime) -> int: ...


class CustomerCarts(Protocol):
    """The cart module, as compliance needs it."""

    async def forget_customer(self, customer_id: str) -> int: ...


@dataclass(frozen=True)
class AuditRecord:
    """One request to keep: who did what to which target, with what outcome."""

    actor_kind: str
    actor_id: str | None
    client_address: str | None
    action: str
    target: dict[str, str] = field(default_factory=dict)
    status: int = 200
    before: Any = None
    after: Any = None
    subject_customer_id: str | None = None
    # False for the record of an erasure: nothing about the erased customer is kept there.
    keep_payload: bool = True


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    client_address: str | None
    action: str
    target: dict[str, Any]
    status: int
    subject_customer_id: str | None
    before: Any
    after: Any
    # The payload was cleared when the customer it was about was erased.
    erased: bool

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    # Pass as `before` for the next (older) page; None on the last page.
    next_before: int | None


@dataclass(frozen=True)
class Verdict:
    intact: bool
    rows: int
    problem: str | None = None


@dataclass(frozen=True)
class Erasure:
    id: str
    customer_id: str
    requested_by_kind: str
    requested_by: str
    erased_at: datetime
    orders_anonymized: int
    carts_forgotten: int
    audit_rows_cleared: int


class AuditLog:
    """The append-only, hash-chained record of what staff, integrations and customers did."""

    def __init__(self, db: Database, *, keyring: Keyring, clock: Clock) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock

    async def append(self, record: AuditRecord) -> int:
        """Add a row at the end of the chain; returns its sequence number.

        Appends are serialized on the head row (locked for the transaction), so two appends
        never take the same previous hash and the chain never forks.
        """
        payload: dict[str, Any] = {"before": record.before, "after": record.after}
        address = record.client_address
        if record.actor_kind == "customer":
            # A customer's address is personal data: kept only in the erasable payload.
            payload["client_address"] = address
            address = None
        salt: str | None = None
        sealed: str | None = None
        if record.keep_payload:
            raw_salt = os.urandom(16)
            salt, digest = raw_salt.hex(), payload_digest(raw_salt, payload)
            sealed = self._keyring.encrypt(canonical_json(payload), context=PAYLOAD_CONTEXT)
        else:
            # Born erased: only the digest of an empty payload, nothing to open.
            digest = payload_digest(b"", {})
        async with self._db.transaction() as uow:
            head = await self._locked_head(uow)
            fields = ChainedFields(
                seq=head.seq + 1,
                at=self._clock.now(),
                actor_kind=record.actor_kind,
                actor_id=record.actor_id,
                client_address=address,
                action=record.action,
                target=canonical_json(record.target),
                status=record.status,
                payload_digest=digest,
                prev_hash=head.row_hash,
            )
            row_hash = fields.row_hash()
            await uow.execute(
                insert(audit_log).values(
                    **fields.__dict__,
                    subject_customer_id=record.subject_customer_id,
                    payload=sealed,
                    salt=salt,
                    row_hash=row_hash,
                )
            )
            await uow.execute(
                update(audit_head)
                .where(audit_head.c.id == _HEAD)
                .values(last_seq=fields.seq, last_hash=row_hash)
            )
            await uow.commit()
        return fields.seq

    async def entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        subject_customer_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """Newest first, payloads opened."""
        query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit + 1)
        if actor is not None:
            query = query.where(audit_log.c.actor_id == actor)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if subject_customer_id is not None:
            query = query.where(audit_log.c.subject_customer_id == subject_customer_id)
        if before is not None:
            query = query.where(audit_log.c.seq < before)
        async with self._db.reading() as conn:
            rows = (await conn.execute(query)).all()
        entries = [await self._entry(row) for row in rows[:limit]]
        return AuditPage(entries, entries[-1].seq if len(rows) > limit else None)

    async def entries_about(self, customer_id: str) -> list[AuditEntry]:
        query = (
            select(audit_log)
            .where(audit_log.c.subject_customer_id == customer_id)
            .order_by(audit_log.c.seq)
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [await self._entry(row) for row in rows]

    async def size(self) -> int:
        async with self._db.reading() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(audit_log))).scalar_one()
            )

    async def verify(
        self, *, batch_size: int = 500, progress: Callable[[int], None] | None = None
    ) -> Verdict:
        """Walk the chain from its first row: every hash, every link, every payload digest,
        and whether it ends where the head says it does."""
        head = await self._head()
        last = START
        checked = 0
        while True:
            async with self._db.reading() as conn:
                rows = (
                    await conn.execute(
                        select(audit_log)
                        .where(audit_log.c.seq > last.seq)
                        .order_by(audit_log.c.seq)
                        .limit(batch_size)
                    )
                ).all()
            if not rows:
                break
            for row in rows:
                problem = break_in_link(last, _chained(row), row.row_hash)
                problem = problem or await self._payload_problem(row)
                if problem is not None:
                    return Verdict(False, checked, problem)
                last = ChainLink(row.seq, row.row_hash)
                checked += 1
            if progress is not None:
                progress(len(rows))
        if head is not None and last.seq > head.seq:
            # Rows appended while we walked: judge the end against the head as it is now.
            head = await self._head()
        problem = break_at_end(last, head)
        return Verdict(problem is None, checked, problem)

    async def clear_payloads_about(self, uow: UnitOfWork, customer_id: str) -> int:
        """Erase what the log says about a customer; digests stay, so the chain still holds."""
        cleared = await uow.execute(
            update(audit_log)
            .where(
                audit_log.c.subject_customer_id == customer_id,
                audit_log.c.payload.is_not(None),
            )
            .values(payload=None, salt=None)
        )
        return int(cleared.rowcount)

    async def reencrypt(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-encrypt the payloads under the active key (their salts and digests stay)."""
        return await reencrypt(
            self._db, self._keyring, audit_log, [("payload", PAYLOAD_CONTEXT)], progress=progress
        )

    async def stale_rows(self) -> int:
        return await count_stale(self._db, self._keyring, audit_log, ["payload"])

    async def _locked_head(self, uow: UnitOfWork) -> ChainLink:
        query = select(audit_head).where(audit_head.c.id == _HEAD).with_for_update()
        row = (await uow.execute(query)).first()
        if row is None:
            # The first append of a new log; a concurrent first append inserts the same row.
            dialect_insert = (
                postgresql_insert if self._db.dialect == "postgresql" else sqlite_insert
            )
            await uow.execute(
                dialect_insert(audit_head)
                .values(id=_HEAD, last_seq=0, last_hash=GENESIS_HASH)
                .on_conflict_do_nothing()
            )
            row = (await uow.execute(query)).one()
        return ChainLink(row.last_seq, row.last_hash)

    async def _head(self) -> ChainLink | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(audit_head).where(audit_head.c.id == _HEAD))).first()
        return None if row is None else ChainLink(row.last_seq, row.last_hash)

    async def _payload_problem(self, row: Any) -> str | None:
        if row.payload is None:
            return None if row.salt is None else f"row {row.seq} was changed"
        if row.salt is None:
            return f"row {row.seq} was changed"
        try:
            payload = json.loads(await self._keyring.decrypt(row.payload, context=PAYLOAD_CONTEXT))
        except KeyringError:
            return f"row {row.seq} was changed (its payload does not open)"
        if payload_digest(bytes.fromhex(row.salt), payload) != row.payload_digest:
            return f"row {row.seq} was changed (its payload)"
        return None

    async def _entry(self, row: Any) -> AuditEntry:
        payload: dict[str, Any] = {}
        if row.payload is not None:
            payload = json.loads(await self._keyring.decrypt(row.payload, context=PAYLOAD_CONTEXT))
        return AuditEntry(
            seq=row.seq,
            at=row.at,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            client_address=row.client_address or payload.get("client_address"),
            action=row.action,
            target=json.loads(row.target),
            status=row.status,
            subject_customer_id=row.subject_customer_id,
            before=payload.get("before"),
            after=payload.get("after"),
            erased=row.payload is None,
        )


def _chained(row: Any) -> ChainedFields:
    return ChainedFields(
        seq=row.seq,
        at=row.at,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        client_address=row.client_address,
        action=row.action,
        target=row.target,
        status=row.status,
        payload_digest=row.payload_digest,
        prev_hash=row.prev_hash,
    )


class ComplianceService:
    """A customer's rights over their data (access, erasure) and the shop's retention rules."""

    def __init__(
        self,
        db: Database,
        *,
        audit: AuditLog,
        accounts: CustomerAccounts,
        orders: CustomerOrders,
        carts: CustomerCarts,
        clock: Clock,
        guest_data_retention: timedelta,
    ) -> None:
        self._db = db
        self.audit = audit
        self._accounts = accounts
        self._orders = orders
        self._carts = carts
        self._clock = clock
        self._retention = guest_data_retention

    async def reencrypt(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-encrypt what compliance keeps encrypted (the audit payloads), for key rotation."""
        return await self.audit.reencrypt(progress)

    async def stale_rows(self) -> int:
        return await self.audit.stale_rows()

    async def export(self, customer_id: str) -> dict[str, Any]:
        """Everything the shop keeps about a customer, as JSON-ready values."""
        if not await self._accounts.customer_exists(customer_id):
            raise CustomerNotFound()
        return {
            "customer_id": customer_id,
            "exported_at": self._clock.now().isoformat(),
            # The account as identity keeps it: profile, consents and their history.
            "profile": await self._accounts.export_customer(customer_id),
            "orders": await self._orders.export_for_customer(customer_id),
            "audit_entries": [e.as_json() for e in await self.audit.entries_about(customer_id)],
        }

    async def erase(self, customer_id: str, requested_by: Principal) -> Erasure:
        """Forget who a customer was, everywhere; orders stay (without them) for accounting.

        Each step is safe to repeat, and the account goes last: until it is gone the customer
        still exists, so an erasure that failed midway is finished by asking again. Erasing
        an erased customer answers with the first erasure.
        """
        if not await self._accounts.customer_exists(customer_id):
            done = await self._erasures_of(customer_id)
            if done:
                return done[0]
            raise CustomerNotFound()
        orders_anonymized = await self._orders.anonymize_customer(customer_id)
        carts_forgotten = await self._carts.forget_customer(customer_id)
        await self._accounts.erase_customer(customer_id)
        erasure_id = new_id()
        async with self._db.transaction() as uow:
            cleared = await self.audit.clear_payloads_about(uow, customer_id)
            erasure = Erasure(
                id=erasure_id,
                customer_id=customer_id,
                requested_by_kind=requested_by.kind,
                requested_by=requested_by.subject,
                erased_at=self._clock.now(),
                orders_anonymized=orders_anonymized,
                carts_forgotten=carts_forgotten,
                audit_rows_cleared=cleared,
            )
            await uow.execute(insert(erasures).values(**erasure.__dict__))
            uow.record(CustomerDataErased(customer_id=customer_id, erasure_id=erasure_id))
            await uow.commit()
        return erasure

    async def erasures(self, customer_id: str) -> Sequence[Erasure]:
        return await self._erasures_of(customer_id)

    async def erase_guest_data(self) -> int:
        """Anonymize guest orders older than the retention period; how many were."""
        return await self._orders.erase_guest_data(self._clock.now() - self._retention)

    async def _erasures_of(self, customer_id: str) -> list[Erasure]:
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(
                    select(erasures)
                    .where(erasures.c.customer_id == customer_id)
                    .order_by(erasures.c.erased_at)
                )
            ).all()
        return [Erasure(**row._mapping) for row in rows]
