"""Identity rules: who may do what, and what a staff account must look like."""

from __future__ import annotations

import re
from dataclasses import dataclass

from colonnade.kernel.errors import Conflict, InvalidInput, Unauthorized

# Every scope a staff member can hold; an admin holds them all.
STAFF_SCOPES: frozenset[str] = frozenset(
    {
        "catalog:write",
        "pricing:read",
        "pricing:write",
        "inventory:read",
        "inventory:write",
        "orders:read",
        "orders:write",
        "orders:refund",
        "payments:write",
        "staff:write",
    }
)

MIN_PASSWORD_LENGTH = 12
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self) -> None:
        # One message for unknown e-mail and wrong password: it reveals no accounts.
        super().__init__("the e-mail address or the password is wrong")


class InvalidToken(Unauthorized):
    code = "invalid_token"


class StaffExists(Conflict):
    code = "staff_exists"

    def __init__(self, email: str) -> None:
        super().__init__(f"a staff account for {email} exists already")


class WeakPassword(InvalidInput):
    code = "weak_password"


class UnknownScope(InvalidInput):
    code = "unknown_scope"


@dataclass(frozen=True)
class StaffMember:
    id: str
    email: str
    name: str
    scopes: frozenset[str]


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput(f"'{email}' is not an e-mail address", field="email")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def checked_scopes(scopes: frozenset[str] | None) -> frozenset[str]:
    if scopes is None:
        return STAFF_SCOPES
    unknown = sorted(scopes - STAFF_SCOPES)
    if unknown:
        raise UnknownScope(f"unknown scopes: {', '.join(unknown)}", scopes=unknown)
    return scopes
