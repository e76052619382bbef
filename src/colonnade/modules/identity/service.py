"""Identity use cases: staff accounts and the access tokens that prove who calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from colonnade.kernel.clock import Clock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.ids import new_id
from colonnade.kernel.principal import Principal
from colonnade.modules.identity.domain import (
    InvalidCredentials,
    InvalidToken,
    StaffExists,
    StaffMember,
    check_password,
    checked_scopes,
    normalized_email,
)
from colonnade.modules.identity.events import StaffCreated
from colonnade.modules.identity.schema import staff

_ISSUER = "colonnade"
_AUDIENCE = "colonnade-api"


@dataclass(frozen=True)
class AccessToken:
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class IdentityService:
    def __init__(
        self, db: Database, *, secret_key: str, access_token_ttl: timedelta, clock: Clock
    ) -> None:
        self._db = db
        self._key = secret_key
        self._ttl = access_token_ttl
        self._clock = clock
        self._hasher = PasswordHasher()
        # Verified against when an e-mail is unknown, so both failures take the same time.
        self._decoy = self._hasher.hash(new_id())

    async def create_staff(
        self, email: str, password: str, *, name: str = "", scopes: frozenset[str] | None = None
    ) -> StaffMember:
        email = normalized_email(email)
        check_password(password)
        granted = checked_scopes(scopes)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        member = StaffMember(id=new_id(), email=email, name=name or email, scopes=granted)
        async with self._db.transaction() as uow:
            try:
                await uow.execute(
                    insert(staff).values(
                        id=member.id,
                        email=email,
                        name=member.name,
                        password_hash=password_hash,
                        scopes=sorted(granted),
                        disabled=False,
                        created_at=self._clock.now(),
                    )
                )
            except IntegrityError as error:
                raise StaffExists(email) from error
            uow.record(StaffCreated(staff_id=member.id, scopes=sorted(granted)))
            await uow.commit()
        return member

    async def issue_token(self, email: str, password: str) -> AccessToken:
        row = None
        try:
            email = normalized_email(email)
        except InvalidInput:
            email = ""
        if email:
            async with self._db.reading() as conn:
                row = (
                    await conn.execute(
                        select(
                            staff.c.id, staff.c.password_hash, staff.c.scopes, staff.c.disabled
                        ).where(staff.c.email == email)
                    )
                ).first()
        verified = await asyncio.to_thread(
            self._verify, row.password_hash if row else self._decoy, password
        )
        if row is None or not verified or row.disabled:
            raise InvalidCredentials()
        scopes = sorted(row.scopes)
        now = self._clock.now()
        claims = {
            "sub": row.id,
            "kind": "staff",
            "scope": " ".join(scopes),
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + self._ttl,
            "jti": new_id(),
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return AccessToken(token, "bearer", int(self._ttl.total_seconds()), " ".join(scopes))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken(
                "the access token has expired; ask POST /auth/token for a new one"
            ) from error
        except jwt.PyJWTError as error:
            raise InvalidToken("the access token is not valid") from error
        return Principal(
            subject=str(claims["sub"]),
            kind=str(claims.get("kind", "staff")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
        )
