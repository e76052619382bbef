"""Identity use cases: staff and customer accounts, the tokens that prove who calls, API keys.

Access tokens are short-lived signed JWTs checked without the database. Refresh tokens are
opaque random strings stored as SHA-256 digests in families: each use spends one and hands
out the next of its family; a spent one coming back means it was copied, so its whole family
is revoked. A customer's e-mail and name are encrypted with the shop's keyring and found by
the e-mail's blind index; login failures are throttled per blind index, so an address
without an account is throttled alike and nothing tells the two apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from colonnade.kernel.clock import Clock
from colonnade.kernel.crypto import Keyring, count_stale, reencrypt
from colonnade.kernel.db import Database
from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.ids import new_id
from colonnade.kernel.principal import Principal
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.identity.domain import (
    CONSENT_PURPOSES,
    CUSTOMER_SCOPES,
    ApiKeyNotFound,
    Customer,
    CustomerNotFound,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    LockoutPolicy,
    LoginLocked,
    LoginThrottle,
    StaffExists,
    StaffMember,
    WrongPassword,
    check_consent_purpose,
    check_password,
    checked_name,
    checked_scopes,
    grantable,
    normalized_email,
    scopes_of_roles,
)
from colonnade.modules.identity.events import CustomerErased, CustomerRegistered, StaffCreated
from colonnade.modules.identity.schema import (
    api_keys,
    consent_history,
    consents,
    customers,
    login_throttles,
    refresh_tokens,
    staff,
)

_ISSUER = "colonnade"
_AUDIENCE = "colonnade-api"
_API_KEY_PREFIX = "ck_"
_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EMAIL_CONTEXT = "identity.customers.email"
NAME_CONTEXT = "identity.customers.name"
SOURCE_CONTEXT = "identity.consents.source"
# The blind index context the orders module shares, so both find one address alike.
EMAIL_INDEX_CONTEXT = "email"


@dataclass(frozen=True)
class AccessToken:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    refresh_token: str


@dataclass(frozen=True)
class Consent:
    purpose: str
    granted: bool
    changed_at: datetime | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: `key` is shown this once and is not stored anywhere."""

    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    key: str


@dataclass(frozen=True)
class _Account:
    subject: str
    kind: str
    scopes: frozenset[str]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class IdentityService:
    def __init__(
        self,
        db: Database,
        *,
        keyring: Keyring,
        secret_key: str,
        access_token_ttl: timedelta,
        clock: Clock,
        refresh_token_ttl: timedelta = timedelta(days=30),
        lockout: LockoutPolicy | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._key = secret_key
        self._ttl = access_token_ttl
        self._refresh_ttl = refresh_token_ttl
        self._lockout = lockout or LockoutPolicy()
        self._clock = clock
        self._hasher = PasswordHasher()
        # Verified against when an e-mail is unknown, so both failures take the same time.
        self._decoy = self._hasher.hash(new_id())

    # Staff

    async def create_staff(
        self,
        email: str,
        password: str,
        *,
        name: str = "",
        scopes: frozenset[str] | None = None,
        roles: Sequence[str] | None = None,
        granted_by: Principal | None = None,
    ) -> StaffMember:
        """A staff account holding `roles` (or bare `scopes`; neither: the admin role).

        With `granted_by`, the new account may hold no scope its creator does not hold.
        """
        email = normalized_email(email)
        check_password(password)
        if roles is None and scopes is None:
            roles = ["admin"]
        role_list = sorted(set(roles or []))
        granted = scopes_of_roles(role_list) | checked_scopes(scopes or frozenset())
        if granted_by is not None:
            grantable(granted, granted_by.scopes)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        member = StaffMember(
            id=new_id(),
            email=email,
            name=checked_name(name) if name else email,
            scopes=granted,
            roles=tuple(role_list),
        )
        async with self._db.transaction() as uow:
            try:
                await uow.execute(
                    insert(staff).values(
                        id=member.id,
                        email=email,
                        name=member.name,
                        password_hash=password_hash,
                        scopes=sorted(granted),
                        roles=role_list,
                        disabled=False,
                        created_at=self._clock.now(),
                    )
                )
            except IntegrityError as error:
                raise StaffExists(email) from error
            uow.record(StaffCreated(staff_id=member.id, scopes=sorted(granted)))
            await uow.commit()
        return member

    # Customers

    async def register_customer(self, email: str, password: str, name: str) -> Customer:
        """A new customer account.

        An e-mail that has an account already gets an answer shaped like a new one, with an
        id that belongs to nothing, and nothing is created: the answer must not tell a
        stranger which addresses are customers. (A shop that sends mail would tell the
        address's owner instead.)
        """
        email = normalized_email(email)
        name = checked_name(name)
        check_password(password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        customer = Customer(id=new_id(), email=email, name=name)
        async with self._db.transaction() as uow:
            try:
                await uow.execute(
                    insert(customers).values(
                        id=customer.id,
                        email_index=self._email_index(email),
                        email=self._keyring.encrypt(email, context=EMAIL_CONTEXT),
                        name=self._keyring.encrypt(name, context=NAME_CONTEXT),
                        password_hash=password_hash,
                        disabled=False,
                        created_at=self._clock.now(),
                    )
                )
            except IntegrityError:
                return Customer(id=new_id(), email=email, name=name)
            uow.record(CustomerRegistered(customer_id=customer.id))
            await uow.commit()
        return customer

    async def customer(self, customer_id: str) -> Customer:
        async with self._db.reading() as conn:
            row = (await conn.execute(self._live_customer(customer_id))).first()
        if row is None:
            raise CustomerNotFound()
        return await self._opened(row)

    async def rename_customer(self, customer_id: str, name: str) -> Customer:
        name = checked_name(name)
        async with self._db.transaction() as uow:
            changed = await uow.execute(
                update(customers)
                .where(customers.c.id == customer_id, customers.c.erased_at.is_(None))
                .values(name=self._keyring.encrypt(name, context=NAME_CONTEXT))
            )
            if changed.rowcount != 1:
                raise CustomerNotFound()
            await uow.commit()
        return await self.customer(customer_id)

    async def change_password(self, customer_id: str, current: str, new: str) -> None:
        """A new password; every refresh token of the customer stops working."""
        check_password(new)
        async with self._db.reading() as conn:
            row = (await conn.execute(self._live_customer(customer_id))).first()
        if row is None:
            raise CustomerNotFound()
        if not await asyncio.to_thread(self._verify, row.password_hash, current):
            raise WrongPassword()
        password_hash = await asyncio.to_thread(self._hasher.hash, new)
        async with self._db.transaction() as uow:
            await uow.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(password_hash=password_hash)
            )
            await uow.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == customer_id))
            await uow.commit()

    async def customer_exists(self, customer_id: str) -> bool:
        async with self._db.reading() as conn:
            return (await conn.execute(self._live_customer(customer_id))).first() is not None

    # Consents

    async def set_consent(
        self, customer_id: str, purpose: str, *, granted: bool, source: str | None
    ) -> Consent:
        """Record a yes or no, with when and from which client address it came."""
        check_consent_purpose(purpose)
        now = self._clock.now()
        async with self._db.transaction() as uow:
            # Locking the customer row queues two changes of one customer's consents.
            locked = await uow.execute(
                self._live_customer(customer_id).with_for_update(of=customers)
            )
            if locked.first() is None:
                raise CustomerNotFound()
            key = (consents.c.customer_id == customer_id) & (consents.c.purpose == purpose)
            exists = (await uow.execute(select(consents.c.purpose).where(key))).first()
            if exists:
                await uow.execute(
                    update(consents).where(key).values(granted=granted, changed_at=now)
                )
            else:
                await uow.execute(
                    insert(consents).values(
                        customer_id=customer_id, purpose=purpose, granted=granted, changed_at=now
                    )
                )
            await uow.execute(
                insert(consent_history).values(
                    id=new_id(),
                    customer_id=customer_id,
                    purpose=purpose,
                    granted=granted,
                    changed_at=now,
                    source=None
                    if source is None
                    else self._keyring.encrypt(source, context=SOURCE_CONTEXT),
                )
            )
            await uow.commit()
        return Consent(purpose, granted, now)

    async def consents(self, customer_id: str) -> list[Consent]:
        """Every purpose a customer can consent to; never asked means not granted."""
        async with self._db.reading() as conn:
            if (await conn.execute(self._live_customer(customer_id))).first() is None:
                raise CustomerNotFound()
            rows = (
                await conn.execute(select(consents).where(consents.c.customer_id == customer_id))
            ).all()
        given = {row.purpose: row for row in rows}
        return [
            Consent(p, given[p].granted, given[p].changed_at)
            if p in given
            else Consent(p, False, None)
            for p in sorted(CONSENT_PURPOSES)
        ]

    # Personal data rights (called by the compliance module)

    async def export_customer(self, customer_id: str) -> dict[str, Any]:
        """Everything identity keeps about a customer, decrypted, as JSON-ready values."""
        profile = await self.customer(customer_id)
        async with self._db.reading() as conn:
            created_at = (
                await conn.execute(
                    select(customers.c.created_at).where(customers.c.id == customer_id)
                )
            ).scalar_one()
            history = (
                await conn.execute(
                    select(consent_history)
                    .where(consent_history.c.customer_id == customer_id)
                    .order_by(consent_history.c.changed_at, consent_history.c.id)
                )
            ).all()
        return {
            "id": profile.id,
            "email": profile.email,
            "name": profile.name,
            "created_at": created_at.isoformat(),
            "consents": [
                {
                    "purpose": c.purpose,
                    "granted": c.granted,
                    "changed_at": c.changed_at.isoformat() if c.changed_at else None,
                }
                for c in await self.consents(customer_id)
            ],
            "consent_history": [
                {
                    "purpose": h.purpose,
                    "granted": h.granted,
                    "changed_at": h.changed_at.isoformat(),
                    "source": await self._keyring.decrypt_optional(
                        h.source, context=SOURCE_CONTEXT
                    ),
                }
                for h in history
            ],
        }

    async def erase_customer(self, customer_id: str) -> None:
        """Forget who the customer was; the id stays, meaning nothing. Repeating does nothing.

        The consent decisions stay (with their times, without the client address) as the
        record of what was agreed while the account lived.
        """
        async with self._db.transaction() as uow:
            row = (
                await uow.execute(
                    select(customers.c.email_index, customers.c.erased_at)
                    .where(customers.c.id == customer_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise CustomerNotFound()
            if row.erased_at is not None:
                return
            await uow.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(
                    email_index=None,
                    email=None,
                    name=None,
                    password_hash=None,
                    erased_at=self._clock.now(),
                )
            )
            await uow.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == customer_id))
            await uow.execute(
                delete(login_throttles).where(login_throttles.c.email_index == row.email_index)
            )
            await uow.execute(
                update(consent_history)
                .where(consent_history.c.customer_id == customer_id)
                .values(source=None)
            )
            uow.record(CustomerErased(customer_id=customer_id))
            await uow.commit()

    # Logging in and tokens

    async def issue_token(self, email: str, password: str) -> AccessToken:
        """The password grant, for staff and customers alike.

        Each attempt counts as a failure before the password is checked and is forgiven
        when it is right, so parallel guesses cannot slip past the lockout. An address that
        is both a staff and a customer e-mail logs into the staff account first.
        """
        index = self._email_index(email.strip().lower())
        await self._count_attempt(index)
        account = await self._verified_account(email, index, password)
        if account is None:
            raise InvalidCredentials()
        family = new_id()
        async with self._db.transaction() as uow:
            await uow.execute(delete(login_throttles).where(login_throttles.c.email_index == index))
            token = await self._issue(uow, account, family)
            await uow.commit()
        return token

    async def refresh(self, refresh_token: str) -> AccessToken:
        """Spend a refresh token for a new pair; a spent one coming back revokes its family."""
        now = self._clock.now()
        digest = _digest(refresh_token)
        async with self._db.transaction() as uow:
            row = (
                await uow.execute(
                    select(refresh_tokens).where(refresh_tokens.c.token_hash == digest)
                )
            ).first()
            if row is None or row.expires_at <= now:
                raise InvalidRefreshToken()
            spent = await uow.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == digest, refresh_tokens.c.spent_at.is_(None))
                .values(spent_at=now)
            )
            account = await self._active_account(uow, row.subject, row.kind)
            if spent.rowcount != 1 or account is None:
                await uow.execute(
                    delete(refresh_tokens).where(refresh_tokens.c.family_id == row.family_id)
                )
                await uow.commit()
                raise InvalidRefreshToken()
            token = await self._issue(uow, account, row.family_id)
            await uow.commit()
        return token

    async def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token's family; an unknown token is already as good as revoked."""
        async with self._db.transaction() as uow:
            family = (
                await uow.execute(
                    select(refresh_tokens.c.family_id).where(
                        refresh_tokens.c.token_hash == _digest(refresh_token)
                    )
                )
            ).scalar_one_or_none()
            if family is None:
                return
            await uow.execute(delete(refresh_tokens).where(refresh_tokens.c.family_id == family))
            await uow.commit()

    async def prune(self) -> int:
        """Forget what no longer counts: refresh tokens past their expiry (they cannot be used,
        nor betray a thief) and login throttles a quiet window has forgiven."""
        now = self._clock.now()
        forgiven = now - self._lockout.window
        async with self._db.transaction() as uow:
            tokens = await uow.execute(
                delete(refresh_tokens).where(refresh_tokens.c.expires_at <= now)
            )
            throttles = await uow.execute(
                delete(login_throttles).where(
                    login_throttles.c.last_failure_at <= forgiven,
                    or_(
                        login_throttles.c.locked_until.is_(None),
                        login_throttles.c.locked_until <= forgiven,
                    ),
                )
            )
            await uow.commit()
        return int(tokens.rowcount + throttles.rowcount)

    async def logout_all(self, subject: str) -> None:
        async with self._db.transaction() as uow:
            await uow.execute(delete(refresh_tokens).where(refresh_tokens.c.subject == subject))
            await uow.commit()

    async def authenticate(self, token: str) -> Principal:
        if token.startswith(_API_KEY_PREFIX):
            return await self._api_key_principal(token)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                # Expiry is judged by the shop's clock, the one that issued the token.
                options={
                    "require": ["exp", "sub", "iss", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidToken("the access token is not valid") from error
        if not isinstance(claims["exp"], int | float) or (
            claims["exp"] <= self._clock.now().timestamp()
        ):
            raise InvalidToken("the access token has expired; ask POST /auth/token for a new one")
        return Principal(
            subject=str(claims["sub"]),
            kind=str(claims.get("kind", "staff")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
        )

    # API keys

    async def create_api_key(
        self, creator: Principal, name: str, scopes: Sequence[str]
    ) -> NewApiKey:
        name = checked_name(name)
        granted = sorted(grantable(frozenset(scopes), creator.scopes))
        key_id = new_id()
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._db.transaction() as uow:
            await uow.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    secret_hash=_digest(secret),
                    scopes=granted,
                    created_by=creator.subject,
                    created_at=now,
                    revoked_at=None,
                )
            )
            await uow.commit()
        return NewApiKey(key_id, name, granted, now, f"{_API_KEY_PREFIX}{key_id}_{secret}")

    async def api_keys(self) -> list[ApiKey]:
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [
            ApiKey(r.id, r.name, list(r.scopes), r.created_by, r.created_at, r.revoked_at)
            for r in rows
        ]

    async def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key at once; revoking it again changes nothing."""
        if not _KEY_ID.fullmatch(key_id):
            raise ApiKeyNotFound(key_id)
        async with self._db.transaction() as uow:
            found = await uow.execute(
                select(api_keys.c.revoked_at).where(api_keys.c.id == key_id).with_for_update()
            )
            row = found.first()
            if row is None:
                raise ApiKeyNotFound(key_id)
            if row.revoked_at is None:
                await uow.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id)
                    .values(revoked_at=self._clock.now())
                )
                await uow.commit()

    # Key rotation

    async def reencrypt(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-encrypt the customers' personal data under the keyring's newest key."""
        changed = await reencrypt(
            self._db,
            self._keyring,
            customers,
            [("email", EMAIL_CONTEXT), ("name", NAME_CONTEXT)],
            progress=progress,
        )
        return changed + await reencrypt(
            self._db,
            self._keyring,
            consent_history,
            [("source", SOURCE_CONTEXT)],
            progress=progress,
        )

    async def stale_rows(self) -> int:
        """Rows holding personal data under an older key than the newest."""
        return await count_stale(
            self._db, self._keyring, customers, ["email", "name"]
        ) + await count_stale(self._db, self._keyring, consent_history, ["source"])

    # Insides

    def _email_index(self, email: str) -> str:
        return self._keyring.blind_index(email, context=EMAIL_INDEX_CONTEXT)

    @staticmethod
    def _live_customer(customer_id: str) -> Any:
        return select(customers).where(
            customers.c.id == customer_id, customers.c.erased_at.is_(None)
        )

    async def _opened(self, row: Row[Any]) -> Customer:
        return Customer(
            id=row.id,
            email=await self._keyring.decrypt(row.email, context=EMAIL_CONTEXT),
            name=await self._keyring.decrypt(row.name, context=NAME_CONTEXT),
        )

    async def _count_attempt(self, index: str) -> None:
        """Count a login attempt as failed, unless the address is locked: then refuse it."""
        now = self._clock.now()
        for attempt in range(2):
            async with self._db.transaction() as uow:
                row = (
                    await uow.execute(
                        select(login_throttles)
                        .where(login_throttles.c.email_index == index)
                        .with_for_update()
                    )
                ).first()
                before = (
                    LoginThrottle(row.failures, row.last_failure_at, row.locked_until)
                    if row
                    else LoginThrottle()
                )
                wait = before.retry_after(now)
                if wait:
                    raise LoginLocked(wait)
                after = before.failed(now, self._lockout)
                values = {
                    "failures": after.failures,
                    "last_failure_at": after.last_failure_at,
                    "locked_until": after.locked_until,
                }
                try:
                    if row is None:
                        await uow.execute(
                            insert(login_throttles).values(email_index=index, **values)
                        )
                    else:
                        await uow.execute(
                            update(login_throttles)
                            .where(login_throttles.c.email_index == index)
                            .values(**values)
                        )
                except IntegrityError:
                    # Another attempt for this address counted first; count on top of it.
                    if attempt:
                        raise
                    continue
                await uow.commit()
                return

    async def _verified_account(self, email: str, index: str, password: str) -> _Account | None:
        try:
            address: str | None = normalized_email(email)
        except InvalidInput:
            address = None
        async with self._db.reading() as conn:
            member = None
            if address is not None:
                member = (
                    await conn.execute(
                        select(
                            staff.c.id, staff.c.password_hash, staff.c.scopes, staff.c.disabled
                        ).where(staff.c.email == address)
                    )
                ).first()
            customer = (
                await conn.execute(
                    select(customers.c.id, customers.c.password_hash, customers.c.disabled).where(
                        customers.c.email_index == index
                    )
                )
            ).first()
        candidates: list[tuple[str, _Account, bool]] = []
        if member is not None:
            account = _Account(member.id, "staff", frozenset(member.scopes))
            candidates.append((member.password_hash, account, member.disabled))
        if customer is not None and customer.password_hash:
            account = _Account(customer.id, "customer", CUSTOMER_SCOPES)
            candidates.append((customer.password_hash, account, customer.disabled))
        if not candidates:
            await asyncio.to_thread(self._verify, self._decoy, password)
            return None
        for password_hash, account, disabled in candidates:
            if await asyncio.to_thread(self._verify, password_hash, password) and not disabled:
                return account
        return None

    async def _active_account(self, uow: UnitOfWork, subject: str, kind: str) -> _Account | None:
        if kind == "staff":
            member = (
                await uow.execute(
                    select(staff.c.scopes).where(staff.c.id == subject, staff.c.disabled.is_(False))
                )
            ).first()
            return None if member is None else _Account(subject, kind, frozenset(member.scopes))
        customer = (
            await uow.execute(
                select(customers.c.id).where(
                    customers.c.id == subject,
                    customers.c.erased_at.is_(None),
                    customers.c.disabled.is_(False),
                )
            )
        ).first()
        return None if customer is None else _Account(subject, kind, CUSTOMER_SCOPES)

    async def _issue(self, uow: UnitOfWork, account: _Account, family: str) -> AccessToken:
        now = self._clock.now()
        refresh = secrets.token_urlsafe(32)
        await uow.execute(
            insert(refresh_tokens).values(
                token_hash=_digest(refresh),
                family_id=family,
                subject=account.subject,
                kind=account.kind,
                issued_at=now,
                expires_at=now + self._refresh_ttl,
                spent_at=None,
            )
        )
        scope = " ".join(sorted(account.scopes))
        claims = {
            "sub": account.subject,
            "kind": account.kind,
            "scope": scope,
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + self._ttl,
            "jti": new_id(),
        }
        access = jwt.encode(claims, self._key, algorithm="HS256")
        return AccessToken(access, "bearer", int(self._ttl.total_seconds()), scope, refresh)

    async def _api_key_principal(self, token: str) -> Principal:
        key_id, separator, secret = token.removeprefix(_API_KEY_PREFIX).partition("_")
        if not separator or not secret or not _KEY_ID.fullmatch(key_id):
            raise InvalidToken("the API key is not valid")
        async with self._db.reading() as conn:
            row = (
                await conn.execute(
                    select(api_keys.c.secret_hash, api_keys.c.scopes, api_keys.c.revoked_at).where(
                        api_keys.c.id == key_id
                    )
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            raise InvalidToken("the API key is not valid")
        if row.revoked_at is not None:
            raise InvalidToken("the API key has been revoked")
        return Principal(subject=key_id, kind="api_key", scopes=frozenset(row.scopes))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
