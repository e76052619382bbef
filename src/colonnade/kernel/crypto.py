"""Field encryption for personal data: AES-256-GCM under envelope keys, and blind indexes.

A master key from the environment wraps data keys kept in `kernel_data_keys`; each value
is encrypted under the newest data key and carries that key's id, so `colonnade keys
rotate` can add a key and re-encrypt row by row while every value stays readable. The
context (for example "identity.customers.email") is bound into each ciphertext, so a value
copied into another column does not decrypt. Lookups by e-mail go through a keyed HMAC
(the blind index): equal inputs give equal digests, and the digest tells nothing without
the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Column, ColumnElement, Table, and_, func, insert, not_, or_, select, update

from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.ids import new_id
from colonnade.kernel.schema import data_keys

PREFIX = "enc1"
_NONCE = 12


class KeyringError(Exception):
    """The keys cannot open a value: a wrong master key, a lost data key or a changed value."""


def decode_master_key(encoded: str) -> bytes:
    """A master key is 32 random bytes in URL-safe base64 (`colonnade keys new` prints one)."""
    try:
        key = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
    except ValueError as error:
        raise KeyringError("the master key is not URL-safe base64") from error
    if len(key) != 32:
        raise KeyringError(f"the master key must be 32 bytes, it is {len(key)}")
    return key


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


class Keyring:
    """The data keys of one database, unwrapped in memory; load() before first use."""

    def __init__(self, db: Database, master_key: bytes, *, clock: Clock) -> None:
        self._db = db
        self._master = AESGCM(master_key)
        self._index_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"colonnade blind index"
        ).derive(master_key)
        self._clock = clock
        self._keys: dict[str, AESGCM] = {}
        self._active: str | None = None

    @property
    def active_key_id(self) -> str:
        if self._active is None:
            raise KeyringError("the keyring is not loaded")
        return self._active

    async def load(self) -> None:
        """Unwrap every data key; create the first one in a new database."""
        await self._read_keys()
        if self._active is None:
            await self.add_key()

    async def add_key(self) -> str:
        """Make a new data key the one new values are encrypted under; returns its id."""
        key_id = new_id()
        nonce = os.urandom(_NONCE)
        secret = AESGCM.generate_key(bit_length=256)
        sealed = nonce + self._master.encrypt(nonce, secret, key_id.encode())
        async with self._db.transaction() as uow:
            await uow.execute(
                insert(data_keys).values(
                    id=key_id,
                    wrapped_key=base64.b64encode(sealed).decode(),
                    created_at=self._clock.now(),
                )
            )
            await uow.commit()
        await self._read_keys()
        return key_id

    async def refresh(self) -> int:
        """Learn keys another process added (`colonnade keys rotate`); how many were new."""
        known = len(self._keys)
        await self._read_keys()
        return len(self._keys) - known

    async def _read_keys(self) -> None:
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(
                    select(data_keys.c.id, data_keys.c.wrapped_key, data_keys.c.created_at)
                )
            ).all()
        newest: tuple[datetime, str] | None = None
        for row in rows:
            sealed = base64.b64decode(row.wrapped_key)
            try:
                secret = self._master.decrypt(sealed[:_NONCE], sealed[_NONCE:], row.id.encode())
            except InvalidTag as error:
                raise KeyringError(
                    f"data key {row.id} does not open with this master key "
                    "(is COLONNADE_ENCRYPTION_KEY the one this database was made with?)"
                ) from error
            self._keys[row.id] = AESGCM(secret)
            if newest is None or (row.created_at, row.id) > newest:
                newest = (row.created_at, row.id)
        self._active = newest[1] if newest else None

    def encrypt(self, plaintext: str, *, context: str) -> str:
        key_id = self.active_key_id
        nonce = os.urandom(_NONCE)
        sealed = self._keys[key_id].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    async def decrypt(self, token: str, *, context: str) -> str:
        """Open a value; a key another process added since load() is read on first sight."""
        try:
            prefix, key_id, body = token.split(":", 2)
        except ValueError as error:
            raise KeyringError("the value is not an encrypted field") from error
        if prefix != PREFIX:
            raise KeyringError(f"unknown encryption format '{prefix}'")
        if key_id not in self._keys:
            await self._read_keys()
            if key_id not in self._keys:
                raise KeyringError(f"data key {key_id} is unknown")
        raw = base64.b64decode(body)
        try:
            return self._keys[key_id].decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except InvalidTag as error:
            raise KeyringError(f"the value does not open as {context}") from error

    async def decrypt_optional(self, token: str | None, *, context: str) -> str | None:
        return None if token is None else await self.decrypt(token, context=context)

    def blind_index(self, value: str, *, context: str) -> str:
        """A keyed digest for equality lookups; normalise `value` before calling."""
        message = context.encode() + b"\x00" + value.encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def encrypted_under(column: Column[str], key_id: str) -> ColumnElement[bool]:
    """A SQL condition: the column is empty or already encrypted under `key_id`."""
    return or_(column.is_(None), column.like(f"{PREFIX}:{key_id}:%"))


async def reencrypt(
    db: Database,
    keyring: Keyring,
    table: Table,
    columns: Sequence[tuple[str, str]],
    *,
    batch_size: int = 200,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-encrypt `columns` ((name, context) pairs) of `table` under the active key.

    Works in batches of committed transactions and only touches rows not yet under the
    active key, so an interrupted run is resumed by running it again. Returns rows changed.
    """
    key_id = keyring.active_key_id
    primary = [c for c in table.primary_key.columns]
    stale = not_(and_(*(encrypted_under(table.c[name], key_id) for name, _ in columns)))
    changed = 0
    while True:
        async with db.transaction() as uow:
            rows = (
                await uow.execute(
                    select(*primary, *(table.c[name] for name, _ in columns))
                    .where(stale)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return changed
            written = 0
            for row in rows:
                values: dict[str, str | None] = {}
                for name, context in columns:
                    token = getattr(row, name)
                    values[name] = (
                        None
                        if token is None
                        else keyring.encrypt(
                            await keyring.decrypt(token, context=context), context=context
                        )
                    )
                # Only if the row still holds what was read: an erasure that committed in
                # between must not have the old value written back.
                unchanged = [
                    table.c[name].is_(None)
                    if getattr(row, name) is None
                    else table.c[name] == getattr(row, name)
                    for name, _ in columns
                ]
                result = await uow.execute(
                    update(table)
                    .where(*(c == getattr(row, c.name) for c in primary), *unchanged)
                    .values(**values)
                )
                written += result.rowcount
            await uow.commit()
        changed += written
        if progress is not None:
            progress(written)


async def count_stale(db: Database, keyring: Keyring, table: Table, names: Sequence[str]) -> int:
    """How many rows of `table` hold a value in `names` not yet under the active key."""
    key_id = keyring.active_key_id
    stale = not_(and_(*(encrypted_under(table.c[name], key_id) for name in names)))
    async with db.reading() as conn:
        query = select(func.count()).select_from(table).where(stale)
        return int((await conn.execute(query)).scalar_one())
